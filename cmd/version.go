package cmd

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// What the Makefile stamps with -ldflags -X: the version from `git
// describe --tags --always --dirty`, and the commit and its time from
// git, which fill in for a build that has no version control information
// (go build embeds none from a git worktree, whose .git is a file, nor
// under -buildvcs=false). A plain go build or go install leaves them
// empty, and the build information says what it can.
var (
	buildVersion    string
	buildCommit     string
	buildCommitTime string
)

// versionText is what --version prints after "qmpsh version ".
func versionText() string {
	bi, _ := debug.ReadBuildInfo()
	return formatVersion(stamp{buildVersion, buildCommit, buildCommitTime}, bi, runtime.GOOS+"/"+runtime.GOARCH)
}

// stamp is what the Makefile stamped.
type stamp struct{ version, commit, time string }

// formatVersion says which qmpsh this is: the version (stamped, else the
// module's, which go install module@v1.2.3 and, since Go 1.24, go build
// in a git checkout set), then the commit, its time and whether the tree
// had uncommitted changes (the vcs.* settings go build embeds, else the
// stamped ones), then the Go toolchain and the platform.
func formatVersion(st stamp, bi *debug.BuildInfo, platform string) string {
	version := st.version
	if version == "" && bi != nil && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		version = bi.Main.Version
	}
	if version == "" {
		version = "devel"
	}
	goVersion := runtime.Version()
	var revision, time, modified string
	if bi != nil {
		goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.time":
				time = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
	}
	if revision == "" {
		revision, time = st.commit, st.time
	}
	var b strings.Builder
	b.WriteString(version)
	switch {
	case revision == "":
		b.WriteString("\ncommit unknown (built without version control information: make build records it, as go build -buildvcs=true does in a git clone)")
	default:
		fmt.Fprintf(&b, "\ncommit %s", revision)
		if time != "" {
			fmt.Fprintf(&b, " (%s)", time)
		}
		if modified == "true" {
			b.WriteString(", with uncommitted changes")
		}
	}
	fmt.Fprintf(&b, "\n%s %s", goVersion, platform)
	return b.String()
}
