package cmd

import (
	"slices"
	"strings"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// completions runs cobra's hidden __complete command, as the shells'
// completion scripts do, and returns the candidates (without their
// descriptions) and the directive line.
func completions(t *testing.T, args ...string) (cands []string, directive string) {
	t.Helper()
	r := run(t, "", append([]string{"__complete"}, args...)...)
	if r.code != 0 {
		t.Fatalf("__complete %q: exit %d, stderr %q", args, r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	for _, l := range lines[:len(lines)-1] {
		name, _, _ := strings.Cut(l, "\t")
		cands = append(cands, name)
	}
	return cands, lines[len(lines)-1]
}

// TestCompletion: Tab after a flag or a command's argument offers what
// the flag takes, from QEMU's schema for commands and events, never file
// names ("4" is cobra's directive for no file completion).
func TestCompletion(t *testing.T) {
	sock := qmptest.StartQEMU(t)
	t.Setenv("QMP_SOCKET", "")
	for _, tc := range []struct {
		name string
		args []string
		want []string // all of these, and only names with the prefix typed; nil: none
	}{
		{"Color", []string{"exec", "--color", ""}, []string{"auto", "always", "never"}},
		{"ColorPrefix", []string{"events", "--color", "a"}, []string{"auto", "always"}},
		{"CommandName", []string{"exec", "-s", sock, "query-sta"}, []string{"query-status", "query-stats"}},
		{"WaitEvent", []string{"exec", "-s", sock, "--wait-event", "RESU"}, []string{"RESUME"}},
		{"EventsName", []string{"events", "-s", sock, "--name", "STO"}, []string{"STOP"}},
		{"SchemaCommand", []string{"schema", "-s", sock, "query-sta"}, []string{"query-status"}},
		{"SchemaEvent", []string{"schema", "-s", sock, "STO"}, []string{"STOP"}},
		{"SchemaSecondArgument", []string{"schema", "-s", sock, "STOP", ""}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, dir := completions(t, tc.args...)
			prefix := tc.args[len(tc.args)-1]
			if tc.want == nil && len(got) != 0 {
				t.Errorf("candidates %q, want none", got)
			}
			for _, w := range tc.want {
				if !slices.Contains(got, w) {
					t.Errorf("candidates %q lack %q", got, w)
				}
			}
			for _, g := range got {
				if !strings.HasPrefix(g, prefix) {
					t.Errorf("candidate %q lacks the prefix %q", g, prefix)
				}
			}
			if dir != ":4" {
				t.Errorf("directive %q, want :4 (no file names)", dir)
			}
		})
	}
	// Nothing to ask: no candidates, no file names, no error.
	t.Run("NoServer", func(t *testing.T) {
		got, dir := completions(t, "exec", "-s", "/nonexistent", "query-")
		if len(got) != 0 || dir != ":4" {
			t.Errorf("candidates %q, directive %q; want none, :4", got, dir)
		}
	})
}
