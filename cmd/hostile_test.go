package cmd

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// hostileEscapes is what a hostile server puts in its text to take over
// a terminal: retitle the window, ring the bell, clear the screen.
const hostileEscapes = "\x1b]0;pwned\a\x1b[2J"

// hostileSpelt is hostileEscapes as qmpsh shows it.
const hostileSpelt = `\x1b]0;pwned\a\x1b[2J`

// hostileServer is not QEMU: its greeting's version, its schema's names
// and its errors carry terminal escapes.
func hostileServer(t *testing.T) *qmptest.Server {
	schema := []map[string]any{
		{"name": "query-status", "meta-type": "command", "arg-type": "0", "ret-type": "0"},
		{"name": "evil" + hostileEscapes, "meta-type": "command", "arg-type": "0", "ret-type": "0"},
		{"name": "EV" + hostileEscapes, "meta-type": "event", "arg-type": "0"},
		{"name": "0", "meta-type": "object", "members": []any{}},
	}
	s := qmptest.NewServer(func(c *qmptest.Conn) {
		c.WriteRaw([]byte(`{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "` +
			`\u001b]0;pwned\u0007\u001b[2J"}, "capabilities": []}}` + "\r\n"))
		c.Answer(func(req *qmptest.Request) bool {
			switch req.Execute {
			case "query-qmp-schema":
				c.Reply(req.ID, schema)
			case "garbage": // not JSON: the session ends
				c.WriteRaw([]byte(hostileEscapes + "\r\n"))
				return false
			default:
				c.ReplyError(req.ID, "GenericError", "bad"+hostileEscapes)
			}
			return true
		})
	})
	t.Cleanup(s.Close)
	return s
}

// Text from the server reaches stdout and stderr with its escapes spelt
// out, never as escapes: errors, schema's list and help.
func TestHostileServerText(t *testing.T) {
	s := hostileServer(t)
	for _, tc := range []struct {
		name   string
		r      result
		code   int
		stdout string
		stderr string
	}{
		{"ExecError", run(t, "", "exec", "-s", s.Addr, "boom"), ExitQMPError, "", "GenericError: bad" + hostileSpelt},
		{"SchemaList", runTTY(t, "", "schema", "-s", s.Addr), ExitOK, "  evil" + hostileSpelt + "\n", ""},
		{"SchemaHelp", runTTY(t, "", "schema", "-s", s.Addr, "EV"+hostileEscapes), ExitOK, "EV" + hostileSpelt + " (event)", ""},
		// -v shows a line that is not JSON as it came, escapes spelt out.
		{"VerboseNotJSON", run(t, "", "-v", "exec", "-s", s.Addr, "garbage"), ExitConnection, "", "<-- " + hostileSpelt + "\n"},
		// The user's shell's completion lists no such name.
		{"ShellCompletion", run(t, "", "__complete", "schema", "-s", s.Addr, ""), ExitOK, "query-status\n:4\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r
			if r.code != tc.code || strings.ContainsAny(r.stdout+r.stderr, "\x1b\a") ||
				!strings.Contains(r.stdout, tc.stdout) || !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, %q in stdout, %q in stderr, no escapes",
					r.code, r.stdout, r.stderr, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}

// The client's warnings name the server's events: "dropping events
// event=X".
func TestLineHandlerSpellsOutEscapes(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	slog.New(&lineHandler{mu: &mu, w: &buf, level: slog.LevelWarn}).Warn("dropping events", "event", "EV"+hostileEscapes)
	if want := "qmpsh: warning: dropping events event=EV" + hostileSpelt + "\n"; buf.String() != want {
		t.Errorf("lineHandler wrote %q, want %q", buf.String(), want)
	}
}

// On a terminal, the banner quotes the greeting's version, and Tab draws
// the names it inserts: neither may carry the server's escapes.
func TestPtyHostileServer(t *testing.T) {
	bin := ptyBuildQmpsh(t)
	s := hostileServer(t)
	p := ptyStart(t, bin, "connect", "--color", "never", s.Addr)
	p.expect(`Connected to QEMU 7\.2\.0 \(` + regexp.QuoteMeta(hostileSpelt) + `\) at `)
	p.expectPrompt(``, "(QEMU) ", "")
	p.send("ev\t")
	// evil's name is no candidate: the line stays as typed.
	p.expectPrompt(``, "(QEMU) ", "ev")
	p.send("\x15quit\r")
	p.expectExit(0)
	p.mu.Lock()
	got := bytes.Contains(p.out, []byte("\x1b]0;"))
	p.mu.Unlock()
	if got {
		t.Errorf("the terminal got the server's escapes:\n%s", p.screen())
	}
}

// The proxy's -v shows a client's input that is not JSON (each piece
// QEMU's parser would see) with its escapes spelt out: a client must not drive the terminal the proxy's
// stderr is on.
func TestProxyVerboseSpellsOutEscapes(t *testing.T) {
	p := startProxyCmd(t, qmptest.StartQEMU(t), "-v")
	c, err := net.Dial("unix", p.path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil { // the greeting
		t.Fatal(err)
	}
	io.WriteString(c, hostileEscapes+"\r\n")
	if _, err := r.ReadString('\n'); err != nil { // the proxy's error reply
		t.Fatal(err)
	}
	p.stderr.WaitFor(t, `--> {"error"`, 1)
	if got := p.stderr.String(); strings.ContainsAny(got, "\x1b\a") || !strings.Contains(got, `<-- \x1b`+"\n") {
		t.Errorf("the proxy's -v showed %q; want the client's line spelt out, no escapes", got)
	}
}
