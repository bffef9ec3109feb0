package cmd

import (
	"errors"
	"strings"
	"testing"
)

// Every failure cobra finds before a command runs is a usage error:
// nothing was sent, so the status is 2 and the message is on stderr.
func TestUsageErrorsBeforeRunning(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"UnknownCommand", []string{"exce"}, `unknown command "exce"`},
		{"UnknownCommandSuggests", []string{"exce"}, "exec"},
		{"CompletionUnknownShell", []string{"completion", "tcsh"}, `"tcsh"`},
		{"HelpUnknownTopic", []string{"help", "exce"}, `unknown help topic "exce"`},
		{"HelpUnknownTopicSuggests", []string{"help", "exce"}, "exec"},
		{"ExclusiveFlags", []string{"exec", "--pretty", "--compact", "-s", "/nonexistent", "query-status"}, "pretty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, "", tc.args...)
			if r.code != ExitUsage || r.stdout != "" || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2, no stdout, stderr with %q",
					r.code, r.stdout, r.stderr, tc.want)
			}
			// One line saying what is wrong, one pointing to --help.
			if len(r.stderrLines) != 2 || !strings.HasPrefix(r.stderrLines[0], "qmpsh: ") {
				t.Errorf("stderr %q, want the error on one line and the --help pointer", r.stderr)
			}
		})
	}
}

func TestHelpTopics(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"help", "exec"}, {"help", "completion", "bash"}, {"completion"}} {
		r := run(t, "", args...)
		if r.code != ExitOK || r.stdout == "" || r.stderr != "" {
			t.Errorf("%q: exit %d, stdout %d bytes, stderr %q; want help on stdout, exit 0",
				args, r.code, len(r.stdout), r.stderr)
		}
	}
}

// The table is in every command's help, once.
func TestHelpShowsExitStatusOnce(t *testing.T) {
	root := NewRootCmd(NewFactory(&IOStreams{}))
	names := []string{""}
	for _, c := range root.Commands() {
		names = append(names, c.Name())
	}
	for _, name := range names {
		args := []string{"--help"}
		if name != "" {
			args = []string{name, "--help"}
		}
		r := run(t, "", args...)
		if n := strings.Count(r.stdout, "Exit status:"); r.code != 0 || n != 1 {
			t.Errorf("qmpsh %s --help: exit %d, the exit-status table %d times", name, r.code, n)
		}
	}
}

func TestExitCodeUnknownError(t *testing.T) {
	// An error a command returns that the mapping does not know is a
	// failure, not a lost connection.
	if got := exitCode(&runError{errors.New("something odd")}); got != ExitQMPError {
		t.Errorf("unknown error from a running command: exit %d, want %d", got, ExitQMPError)
	}
	// One cobra returns before any command runs is a usage error.
	if got := exitCode(errors.New(`unknown command "x" for "qmpsh"`)); got != ExitUsage {
		t.Errorf("error from cobra: exit %d, want %d", got, ExitUsage)
	}
}

// A fan-out target's failure maps like a command's: an error of no known
// kind is not a usage error (nothing cobra found) nor a lost connection.
func TestFanOutUnknownError(t *testing.T) {
	o := failed(errors.New("something odd"))
	if o.code != ExitQMPError || o.Error.Class != "InternalError" {
		t.Errorf("failed(unknown) = exit %d, class %q; want exit 1, InternalError", o.code, o.Error.Class)
	}
	o = failed(connectionError("/x.sock", errors.New("gone")))
	if o.code != ExitConnection || o.Error.Class != "ConnectionError" {
		t.Errorf("failed(connection) = exit %d, class %q; want exit 3, ConnectionError", o.code, o.Error.Class)
	}
}
