package cmd

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
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
			!strings.Contains(r.stderr, `--> {"execute":"query-status"}`) {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("VerboseWrap", func(t *testing.T) {
		qmptest.RequireQEMU(t, "qemu-system-x86_64")
		wrapDirs(t)
		r := run(t, "query-status\n", append([]string{"-v", "wrap", "--"}, wrapQEMU...)...)
		requireJSONLines(t, r)
		if r.code != 0 || !strings.Contains(r.stdout, `"status":"running"`) ||
			!strings.Contains(r.stderr, `--> {"execute":"query-status"}`) {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("ConnectionLost", func(t *testing.T) {
		sock := qmptest.StartQEMU(t)
		r := run(t, "{\"execute\":\"quit\"}\nquery-status\n", "connect", sock)
		requireJSONLines(t, r)
		if r.code != ExitConnection || !strings.Contains(r.stdout, `{"return":{}}`) ||
			// query-status may leave before the hang-up is seen: then it
			// was cut off rather than refused.
			!strings.Contains(r.stderr, "not sent: connection lost: ") &&
				!strings.Contains(r.stderr, "connection lost before the reply arrived: ") {
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

// TestVerboseShortensOwnTraffic: -v shows qmpsh's own schema fetch
// shortened and what the user asked for whole; --log keeps everything.
func TestVerboseShortensOwnTraffic(t *testing.T) {
	sock := qmptest.StartQEMU(t)
	short := regexp.MustCompile(`(?m)^<-- \{"return": \[\.\.\. \d+ entries, \d+ KB\], "id": \d+\}$`)

	t.Run("Shell", func(t *testing.T) {
		logFile := filepath.Join(t.TempDir(), "traffic.log")
		r := run(t, "query-status\n", "-v", "--log", logFile, "connect", sock)
		requireJSONLines(t, r)
		if r.code != 0 || !short.MatchString(r.stderr) || len(r.stderr) > 4096 ||
			!strings.Contains(r.stderr, `--> {"execute":"query-qmp-schema","id":1}`) ||
			!strings.Contains(r.stderr, `<-- {"return": {"status": "running", "singlestep": false, "running": true}}`) {
			t.Fatalf("exit %d, stderr (%d bytes) %.3000q", r.code, len(r.stderr), r.stderr)
		}
		b, err := os.ReadFile(logFile)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 50000 || short.Match(b) || !strings.Contains(string(b), `"name": "query-status"`) {
			t.Errorf("the log (%d bytes) should hold the whole schema:\n%.2000s", len(b), b)
		}
	})
	t.Run("UserAsksForSchema", func(t *testing.T) {
		r := run(t, "query-qmp-schema\n", "-v", "connect", sock)
		// The shell fetches it for itself first (shortened), then for
		// the user (whole).
		if r.code != 0 || len(short.FindAllString(r.stderr, -1)) != 1 || len(r.stderr) < 50000 {
			t.Fatalf("exit %d, stderr (%d bytes) %.3000q", r.code, len(r.stderr), r.stderr)
		}
	})
	t.Run("ExecAmbiguousValue", func(t *testing.T) {
		// data=123 may be a string or an integer: exec asks the schema.
		r := run(t, "", "-v", "exec", "-s", sock, "object-add", "qom-type=secret", "id=s9", "data=123")
		if r.code != 0 || !short.MatchString(r.stderr) || len(r.stderr) > 4096 {
			t.Fatalf("exit %d, stderr (%d bytes) %.3000q", r.code, len(r.stderr), r.stderr)
		}
	})
}

// TestPipedShellBuiltinsPrintJSON: on a pipe, help, help NAME, hmp and
// --hmp lines print JSON lines, as everything else does.
func TestPipedShellBuiltinsPrintJSON(t *testing.T) {
	sock := qmptest.StartQEMU(t)
	r := run(t, "help\nhelp query-status\nhmp info status\n", "connect", sock)
	requireJSONLines(t, r)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if r.code != ExitOK || len(lines) != 3 {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	var builtins []struct{ Name, Summary string }
	if err := json.Unmarshal([]byte(lines[0]), &builtins); err != nil || len(builtins) == 0 ||
		builtins[0].Name == "" || builtins[0].Summary == "" {
		t.Errorf("help printed %q (%v), want an array of {name, summary}", lines[0], err)
	}
	var entries []struct {
		Name     string `json:"name"`
		MetaType string `json:"meta-type"`
	}
	if err := json.Unmarshal([]byte(lines[1]), &entries); err != nil || len(entries) < 2 ||
		entries[0].Name != "query-status" || entries[0].MetaType != "command" {
		t.Errorf("help query-status printed %q (%v), want its schema entries", lines[1], err)
	}
	var text string
	if err := json.Unmarshal([]byte(lines[2]), &text); err != nil || !strings.HasPrefix(text, "VM status: running") {
		t.Errorf("hmp info status printed %q (%v), want HMP's text as a JSON string", lines[2], err)
	}

	r = run(t, "info status\n", "connect", "--hmp", sock)
	requireJSONLines(t, r)
	if err := json.Unmarshal([]byte(r.stdout), &text); r.code != ExitOK || err != nil || !strings.HasPrefix(text, "VM status: running") {
		t.Fatalf("--hmp: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}
