package cmd

import (
	"strings"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// TestEventNamesChecked: a misspelt event name is a usage error found in
// the schema before anything is sent, not a wait that never ends.
func TestEventNamesChecked(t *testing.T) {
	sock := qmptest.StartQEMU(t)
	const want = `unknown event "RESUMEE" (did you mean "RESUME"?)`

	t.Run("ExecWaitEvent", func(t *testing.T) {
		r := run(t, "", "exec", "-s", sock, "--wait-event", "RESUMEE", "stop")
		r.expect(t, ExitUsage, "", "qmpsh: "+sock+": "+want+"\n")
		// stop was not sent: the VM still runs.
		s := run(t, "", "exec", "-s", sock, "query-status")
		if !strings.Contains(s.stdout, `"running":true`) {
			t.Errorf("after the refused exec: %q", s.stdout)
		}
	})
	t.Run("ExecFanOut", func(t *testing.T) {
		r := run(t, "", "exec", "-s", sock, "-s", sock, "--parallel", "1", "--wait-event", "RESUMEE", "stop")
		requireJSONLines(t, r)
		lines := parseFanLines(t, r.stdout)
		if r.code != ExitUsage || len(lines) != 1 || lines[sock].Error == nil ||
			lines[sock].Error.Class != "UsageError" || !strings.Contains(lines[sock].Error.Desc, want) {
			t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("Events", func(t *testing.T) {
		r := run(t, "", "events", "-s", sock, "--name", "STOP", "--name", "RESUMEE")
		r.expect(t, ExitUsage, "", "qmpsh: "+sock+": "+want+"\n")
	})
	t.Run("EventsFanOut", func(t *testing.T) {
		r := run(t, "", "events", "-s", sock, "-s", sock, "--name", "RESUMEE")
		requireJSONLines(t, r)
		if r.code != ExitUsage || !strings.Contains(r.stdout, `"class":"UsageError"`) {
			t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	// Without query-qmp-schema there is nothing to check against: the
	// name is taken as given.
	t.Run("NoSchemaNoCheck", func(t *testing.T) {
		s := qmptest.NewServer(qmptest.Standard)
		defer s.Close()
		r := run(t, "", "exec", "-s", s.Addr, "--wait-event", "MY_EVENT", "emit", "name=MY_EVENT")
		requireJSONLines(t, r)
		if r.code != ExitOK || !strings.Contains(r.stdout, `"event":"MY_EVENT"`) {
			t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
}
