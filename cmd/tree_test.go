package cmd

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

func TestLazyCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"exec", "-s", "x", "query-status"}, "exec"},
		{[]string{"job", "wait", "j1"}, "job"},
		{[]string{"ga", "exec", "guest-ping"}, "ga"},
		{[]string{"migrate", "--timeout", "5s", "tcp:x:1"}, "migrate"},
		{nil, ""},
		{[]string{"help", "exec"}, ""},
		{[]string{"completion", "bash"}, ""},
		{[]string{"__complete", "ex"}, ""},
		{[]string{"exce"}, ""},
		{[]string{"--timeout", "5s", "exec", "query-status"}, ""},
		{[]string{"exec", "--help"}, ""},
		{[]string{"exec", "-h"}, ""},
		{[]string{"exec", "-vh"}, ""},
		{[]string{"exec", "--help=true"}, ""},
		{[]string{"exec", "--version"}, ""},
	} {
		if got := lazyCommand(tc.args); got != tc.want {
			t.Errorf("lazyCommand(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

// TestLazyTreeSameAsFull runs argument lists through the whole tree and
// through the tree built for their command alone: what they print and
// return, and the options their flags set, must be the same.
func TestLazyTreeSameAsFull(t *testing.T) {
	sock := qmptest.StartQEMU(t)
	for _, args := range [][]string{
		{"exec", "-s", sock, "query-status"},
		{"exec", "-s", sock, "--timeout", "5s", "--pretty", "--color", "never", "query-name"},
		{"exec", "-s", sock, "--no-such-command"},
		{"exec", "-s", sock, "no-such-command"},
		{"exec", "-s", sock, "--color", "bad", "query-status"},
		{"exec", "-s", sock, "--timeout", "x", "query-status"},
		{"exec", "--pretty", "--compact", "-s", sock, "query-status"},
		{"exec", "--bogus"},
		{"exec", "--help"},
		{"schema", "-s", sock, "query-status"},
		{"job", "wiat"},
		{"job", "list", "-s", sock},
		{"ga"},
		{"migrate"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			full := runTree(t, args, "")
			lazy := runTree(t, args, args[0])
			if full != lazy {
				t.Errorf("whole tree:\n%s\nlazy tree:\n%s", full, lazy)
			}
		})
	}
}

// runTree runs args on the tree newRootCmd builds for only and returns
// what it printed and returned, and the global options it parsed.
func runTree(t *testing.T, args []string, only string) string {
	t.Helper()
	var out, errOut qmptest.Buffer
	f := NewFactory(&IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	root := newRootCmd(f, only)
	code := execute(context.Background(), f, root, args)
	c, _, err := root.Find(args)
	if err != nil {
		t.Fatalf("find %q: %v", args, err)
	}
	var flags []string
	c.Flags().VisitAll(func(fl *pflag.Flag) { flags = append(flags, fl.Name+"="+fl.Value.String()) })
	return fmt.Sprintf("exit %d\nstdout %q\nstderr %q\nflags %s", code, out.String(), errOut.String(), flags)
}

// TestUsage holds usage to the text/template it replaced: cobra's default
// usage template with a usage line only for commands without
// subcommands and the exit-status table appended where the long help
// lacks it. Every command of the whole tree must read the same.
func TestUsage(t *testing.T) {
	tree := func() *cobra.Command {
		f := NewFactory(&IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard})
		root := newRootCmd(f, "")
		// What cobra adds as a command runs: the help command, -h and
		// --version.
		root.InitDefaultHelpCmd()
		walk(root, func(c *cobra.Command) {
			c.InitDefaultHelpFlag()
			c.InitDefaultVersionFlag()
		})
		return root
	}
	ours, theirs := tree(), tree()
	theirs.SetUsageFunc(nil)
	base := strings.Replace(theirs.UsageTemplate(), "{{if .Runnable}}",
		"{{if and .Runnable (not .HasAvailableSubCommands)}}", 1)
	if base == theirs.UsageTemplate() {
		t.Fatal("cobra's usage template has no {{if .Runnable}}: TestUsage needs updating")
	}
	var want []string
	walk(theirs, func(c *cobra.Command) {
		if strings.Contains(c.Long, exitStatusHelp) {
			c.SetUsageTemplate(base)
		} else {
			c.SetUsageTemplate(base + "\n" + exitStatusHelp + "\n")
		}
		want = append(want, c.UsageString())
	})
	i := 0
	walk(ours, func(c *cobra.Command) {
		if got := c.UsageString(); i >= len(want) || got != want[i] {
			t.Errorf("%s: usage is\n%s\nthe template gives\n%s", c.CommandPath(), got, want[min(i, len(want)-1)])
		}
		i++
	})
	if i != len(want) || i < 20 {
		t.Errorf("compared %d commands with %d", i, len(want))
	}
}
