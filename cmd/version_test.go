package cmd

import (
	"runtime/debug"
	"testing"
)

func TestFormatVersion(t *testing.T) {
	vcs := func(rev, time, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev},
			{Key: "vcs.time", Value: time}, {Key: "vcs.modified", Value: modified}}
	}
	tests := []struct {
		name  string
		stamp stamp
		bi    *debug.BuildInfo
		want  string
	}{
		{"make from a tag", stamp{version: "v1.2.0"},
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"},
				Settings: vcs("0123abcd", "2026-12-01T10:00:00Z", "false")},
			"v1.2.0\ncommit 0123abcd (2026-12-01T10:00:00Z)\ngo1.26.8 linux/amd64"},
		{"go build, uncommitted changes", stamp{},
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261201100000-0123abcd0123+dirty"},
				Settings: vcs("0123abcd", "2026-12-01T10:00:00Z", "true")},
			"v0.0.0-20261201100000-0123abcd0123+dirty\ncommit 0123abcd (2026-12-01T10:00:00Z), with uncommitted changes\ngo1.26.8 linux/amd64"},
		{"make in a worktree: the stamped commit", stamp{"0123abc-dirty", "0123abcd", "2026-12-01T11:00:00+01:00"},
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			"0123abc-dirty\ncommit 0123abcd (2026-12-01T11:00:00+01:00)\ngo1.26.8 linux/amd64"},
		{"go build without version control", stamp{},
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			"devel\ncommit unknown (built without version control information: make build records it, as go build -buildvcs=true does in a git clone)\ngo1.26.8 linux/amd64"},
	}
	for _, tt := range tests {
		if got := formatVersion(tt.stamp, tt.bi, "linux/amd64"); got != tt.want {
			t.Errorf("%s:\n%s\nwant:\n%s", tt.name, got, tt.want)
		}
	}
}
