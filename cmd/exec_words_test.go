package cmd

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// TestExecWordsAsShellLine: the words a person types give the same JSON
// whether typed in the shell, as exec's arguments, or pasted as exec's one
// argument. The fake server's echo returns the arguments it was sent, so
// the printed result is what went on the wire.
func TestExecWordsAsShellLine(t *testing.T) {
	srv := qmptest.NewServer(qmptest.Standard)
	defer srv.Close()
	for _, tc := range []struct {
		name  string
		words []string // exec's arguments; joined by blanks, the shell's line
		want  string
	}{
		{"Plain", []string{"echo", "path=/machine", "property=type"}, `{"path":"/machine","property":"type"}`},
		{"DoubleQuotes", []string{"echo", `command-line="info kvm"`}, `{"command-line":"info kvm"}`},
		{"SingleQuotes", []string{"echo", `id='a b'`}, `{"id":"a b"}`},
		{"EscapedBlank", []string{"echo", `path=a\ b`}, `{"path":"a b"}`},
		// Quotes group; they do not make a string: the schema types values
		// (this fake has none, so both are guessed to be integers).
		{"QuotedNumber", []string{"echo", `n="1"`, "m=1"}, `{"m":1,"n":1}`},
		{"JSONValue", []string{"echo", `file={"driver": "null-co", "x": "a'b"}`}, `{"file":{"driver":"null-co","x":"a'b"}}`},
		{"Dotted", []string{"echo", "a.b=1", "a.c=x"}, `{"a":{"b":1,"c":"x"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line := strings.Join(tc.words, " ")
			sh := run(t, line+"\n", "connect", srv.Addr)
			words := run(t, "", append([]string{"exec", "-s", srv.Addr}, tc.words...)...)
			pasted := run(t, "", "exec", "-s", srv.Addr, line)
			for _, r := range []struct {
				how string
				r   result
			}{{"shell", sh}, {"exec words", words}, {"exec one argument", pasted}} {
				requireJSONLines(t, r.r)
				var got bytes.Buffer
				json.Compact(&got, []byte(r.r.stdout))
				if r.r.code != ExitOK || got.String() != tc.want {
					t.Errorf("%s: exit %d, sent %s (stderr %q); want %s", r.how, r.r.code, r.r.stdout, r.r.stderr, tc.want)
				}
			}
		})
	}
}

// TestExecOneArgumentLine: one argument with blanks is a line, parsed as
// the shell parses it, errors included.
func TestExecOneArgumentLine(t *testing.T) {
	srv := qmptest.NewServer(qmptest.Standard)
	defer srv.Close()
	t.Run("TrailingBlank", func(t *testing.T) {
		r := run(t, "", "exec", "-s", srv.Addr, "query-status ")
		requireJSONLines(t, r)
		if r.code != ExitOK || !strings.Contains(r.stdout, `"status":"running"`) {
			t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("Blank", func(t *testing.T) {
		r := run(t, "", "exec", "-s", "/nonexistent", "  ")
		if r.code != ExitUsage || r.stdout != "" {
			t.Errorf("exit %d, stdout %q, stderr %q; want exit 2", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("SyntaxError", func(t *testing.T) {
		r := run(t, "", "exec", "-s", "/nonexistent", "qom-get path")
		r.expect(t, ExitUsage, "", "qmpsh: syntax error at \"path\": expected key=value\n")
	})
	t.Run("OpenTransaction", func(t *testing.T) {
		r := run(t, "", "exec", "-s", "/nonexistent", "transaction( abort")
		if r.code != ExitUsage || r.stdout != "" || !strings.Contains(r.stderr, "transaction") {
			t.Errorf("exit %d, stdout %q, stderr %q; want exit 2", r.code, r.stdout, r.stderr)
		}
	})
}

// TestExecWordsQEMU: the examples, against QEMU itself.
func TestExecWordsQEMU(t *testing.T) {
	sock := qmptest.StartQEMU(t)
	r := run(t, "", "exec", "-s", sock, "qom-get path=/machine property=type")
	r.expect(t, ExitOK, "\"none-machine\"\n", "")

	hmp := []string{"human-monitor-command", `command-line="info kvm"`}
	sh := run(t, strings.Join(hmp, " ")+"\n", "connect", sock)
	ex := run(t, "", append([]string{"exec", "-s", sock}, hmp...)...)
	requireJSONLines(t, sh)
	requireJSONLines(t, ex)
	if sh.code != ExitOK || ex.code != ExitOK || ex.stdout != sh.stdout || !strings.HasPrefix(ex.stdout, `"kvm support: `) {
		t.Errorf("shell: exit %d, %q; exec: exit %d, %q (stderr %q)", sh.code, sh.stdout, ex.code, ex.stdout, ex.stderr)
	}
}
