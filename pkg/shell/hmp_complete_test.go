package shell

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// TestCompleteHMPInfo: after "hmp info", and after "info" in HMP mode,
// Tab offers the info subcommands QEMU lists in "help info".
func TestCompleteHMPInfo(t *testing.T) {
	sock := qmptest.StartQEMU(t)
	c := qmp.NewClient()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Connect(ctx, sock); err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	for _, tc := range []struct {
		hmp  bool
		line string
		want []string // all of these
		not  []string // none of these
		n    int
	}{
		{false, "hmp info sta", []string{"status"}, []string{"info", "block"}, 3},
		{false, "hmp info ", []string{"block", "status", "version", "qtree"}, []string{"info", ""}, 0},
		{false, "hmp  info  ver", []string{"version"}, nil, 3},
		{true, "info sta", []string{"status"}, nil, 3},
		{false, "hmp info status ", nil, []string{"status"}, 0},
		{false, "hmp inf", nil, []string{"status"}, 0},
	} {
		comp := &Completer{Client: c, HMP: tc.hmp}
		got, n := comp.Complete(tc.line)
		for _, w := range tc.want {
			if !slices.Contains(got, w) || n != tc.n {
				t.Errorf("HMP %v, Complete(%q) = %q, %d; want %q among them, %d", tc.hmp, tc.line, got, n, w, tc.n)
			}
		}
		for _, w := range tc.not {
			if slices.Contains(got, w) {
				t.Errorf("HMP %v, Complete(%q) = %q; want no %q", tc.hmp, tc.line, got, w)
			}
		}
		if tc.want == nil && len(got) != 0 {
			t.Errorf("HMP %v, Complete(%q) = %q, want nothing", tc.hmp, tc.line, got)
		}
	}
}
