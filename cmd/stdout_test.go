package cmd

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// requireJSONLines fails the test unless every line of stdout is a JSON
// value: what a script piping qmpsh into jq relies on.
func requireJSONLines(t *testing.T, r result) {
	t.Helper()
	for i, line := range strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n") {
		if line == "" && r.stdout == "" {
			break
		}
		if !json.Valid([]byte(line)) {
			t.Errorf("stdout line %d is not JSON: %q\nstdout %q\nstderr %q", i+1, line, r.stdout, r.stderr)
		}
	}
}

// TestPipedStdoutCarriesResultsOnly: with stdout not a terminal, traffic
// (-v) and notices go to stderr, whatever the mode.
func TestPipedStdoutCarriesResultsOnly(t *testing.T) {
	t.Run("VerboseConnect", func(t *testing.T) {
		sock := qmptest.StartQEMU(t)
		r := run(t, "query-status\n", "-v", "connect", sock)
		requireJSONLines(t, r)
		if r.code != 0 || !strings.Contains(r.stdout, `"status":"running"`) ||
			!strings.Contains(r.stderr, `--> {"execute":"query-status","id":"qmpsh-`) {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("VerboseWrap", func(t *testing.T) {
		qmptest.RequireQEMU(t, "qemu-system-x86_64")
		wrapDirs(t)
		r := run(t, "query-status\n", append([]string{"-v", "wrap", "--"}, wrapQEMU...)...)
		requireJSONLines(t, r)
		if r.code != 0 || !strings.Contains(r.stdout, `"status":"running"`) ||
			!strings.Contains(r.stderr, `--> {"execute":"query-status","id":"qmpsh-`) {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("ConnectionLost", func(t *testing.T) {
		sock := qmptest.StartQEMU(t)
		r := run(t, "{\"execute\":\"quit\"}\nquery-status\n", "connect", sock)
		requireJSONLines(t, r)
		if r.code != ExitConnection || !strings.Contains(r.stdout, `{"return":{}}`) ||
			!strings.Contains(r.stderr, "not sent: connection lost: ") {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("WrapQuit", func(t *testing.T) {
		qmptest.RequireQEMU(t, "qemu-system-x86_64")
		wrapDirs(t)
		r := run(t, "{\"execute\":\"quit\"}\nquery-status\n", append([]string{"wrap", "--"}, wrapQEMU...)...)
		requireJSONLines(t, r)
		// QEMU sends SHUTDOWN before the reply to quit.
		if r.code != 0 || !strings.Contains(r.stdout, `{"return":{}}`) {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
}
