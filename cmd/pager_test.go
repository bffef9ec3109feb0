//go:build linux

package cmd

import (
	"os"
	"strings"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// TestHelpPipedNoPager: on a pipe, help is printed whole (as JSON, one
// line), never paged.
func TestHelpPipedNoPager(t *testing.T) {
	record := writePagerScript(t)
	sock := qmptest.StartQEMU(t)
	r := run(t, "help blockdev-add\n", "connect", sock)
	if r.code != ExitOK || !strings.HasPrefix(r.stdout, `[{"name":"blockdev-add","meta-type":"command"`) ||
		strings.Count(r.stdout, "\n") != 1 || len(r.stdout) < 10000 {
		t.Errorf("exit %d, stdout %.200q (%d lines), stderr %q", r.code, r.stdout, strings.Count(r.stdout, "\n"), r.stderr)
	}
	if _, err := os.Stat(record); err == nil {
		t.Errorf("the pager ran on a pipe")
	}
}

// TestPagerChoice: PAGER set empty or to cat means no pager; unset means
// less; off a terminal there is never one.
func TestPagerChoice(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   map[string]string
		tty   bool
		pager bool
	}{
		{"Unset", map[string]string{}, true, true},
		{"Empty", map[string]string{"PAGER": ""}, true, false},
		{"Cat", map[string]string{"PAGER": "cat"}, true, false},
		{"More", map[string]string{"PAGER": "more"}, true, true},
		{"Pipe", map[string]string{"PAGER": "more"}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &Factory{
				IO:        &IOStreams{InTTY: tc.tty, OutTTY: tc.tty},
				Getenv:    func(k string) string { return tc.env[k] },
				LookupEnv: func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok },
			}
			o := &GlobalOptions{Factory: f}
			if got := o.pager() != nil; got != tc.pager {
				t.Errorf("pager: %v, want %v", got, tc.pager)
			}
		})
	}
}
