package cmd

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// goWording is Go's own text that must not reach a person.
var goWording = []string{"context deadline exceeded", "Failed to establish", "resource temporarily unavailable"}

func (r result) mustSay(t *testing.T, code int, parts ...string) {
	t.Helper()
	if r.code != code || r.stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d", r.code, r.stdout, r.stderr, code)
	}
	if len(r.stderrLines) != 1 {
		t.Errorf("stderr is %d lines, want one: %q", len(r.stderrLines), r.stderr)
	}
	for _, p := range parts {
		if !strings.Contains(r.stderr, p) {
			t.Errorf("stderr %q does not say %q", r.stderr, p)
		}
	}
	for _, w := range goWording {
		if strings.Contains(r.stderr, w) {
			t.Errorf("stderr %q has Go's wording %q", r.stderr, w)
		}
	}
}

// holdMonitor connects a first client to QEMU's monitor and keeps it: QEMU
// serves one client at a time, so the next ones wait unanswered.
func holdMonitor(t *testing.T, sock string) {
	t.Helper()
	c := qmp.NewClient()
	if err := c.Connect(context.Background(), sock); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Disconnect() })
}

func TestMonitorBusy(t *testing.T) {
	sock := qmptest.StartQEMU(t)
	holdMonitor(t, sock)
	hint := "another client may be connected to this monitor"
	t.Run("NoGreeting", func(t *testing.T) {
		run(t, "", "exec", "--timeout", "300ms", "-s", sock, "query-status").
			mustSay(t, ExitTimeout, sock+": timed out after 300ms waiting for the QMP greeting", hint, "its own -qmp", "qmpsh proxy")
		// events' --timeout also bounds its whole run, with the same
		// deadline, which must not hide what the wait was for.
		run(t, "", "events", "--timeout", "300ms", "-s", sock).
			mustSay(t, ExitTimeout, sock+": timed out after 300ms waiting for the QMP greeting", hint, "its own -qmp", "qmpsh proxy")
	})
	t.Run("Proxy", func(t *testing.T) {
		// The proxy is told to free the monitor, not to use a proxy. A
		// QEMU of its own: the calls above fill the first one's backlog.
		sock := qmptest.StartQEMU(t)
		holdMonitor(t, sock)
		r := run(t, "", "proxy", "--timeout", "300ms", "-s", sock, "--listen", filepath.Join(t.TempDir(), "p.sock"))
		last := r.stderrLines[len(r.stderrLines)-1]
		if r.code != ExitTimeout || !strings.Contains(last, sock+": timed out after 300ms waiting for the QMP greeting") ||
			!strings.Contains(last, "the proxy needs it to itself") || strings.Contains(last, "through qmpsh proxy") {
			t.Errorf("proxy on a busy monitor: exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("QueueFull", func(t *testing.T) {
		// Queue connections until the kernel refuses more: QEMU's
		// listen backlog is small.
		for i := 0; ; i++ {
			c, err := net.Dial("unix", sock)
			if errors.Is(err, syscall.EAGAIN) {
				break
			}
			if err != nil || i == 64 {
				t.Fatalf("after %d connections: %v", i, err)
			}
			t.Cleanup(func() { c.Close() })
		}
		run(t, "", "exec", "-s", sock, "query-status").
			mustSay(t, ExitConnection, "cannot connect to "+sock, hint, "its own -qmp", "qmpsh proxy")
	})
}

func TestMessagesQuoteWhatCame(t *testing.T) {
	junk := "\x00\x01\x02\x1b[31m" + strings.Repeat("x", 1000) + "\n"
	s := qmptest.NewServer(func(c *qmptest.Conn) { c.WriteRaw([]byte(junk)) })
	defer s.Close()
	r := run(t, "", "exec", "-s", s.Addr, "query-status")
	r.mustSay(t, ExitConnection, `not a QMP greeting: "\x00\x01\x02\x1b[31mxxx`, `xxx"...`)
	if strings.ContainsAny(r.stderr, "\x00\x01\x02\x1b") || len(r.stderr) > 400 {
		t.Errorf("stderr has the raw bytes, or all of them: %q", r.stderr)
	}
}

func TestTimeoutsSayWhatAndHowLong(t *testing.T) {
	s := qmptest.NewServer(func(c *qmptest.Conn) {
		c.Greet()
		c.ReadRequest() // qmp_capabilities, never answered
		<-c.Done()
	})
	defer s.Close()
	run(t, "", "exec", "--timeout", "200ms", "-s", s.Addr, "query-status").
		mustSay(t, ExitTimeout, s.Addr+": timed out after 200ms waiting for the reply to qmp_capabilities")
}

func TestNotASocket(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(file, []byte("not a socket\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("Connect", func(t *testing.T) {
		run(t, "", "exec", "-s", file, "query-status").
			mustSay(t, ExitConnection, "cannot connect to "+file+": "+file+" is not a socket")
	})
	t.Run("Accept", func(t *testing.T) {
		run(t, "", "accept", "--timeout", "10s", file).
			mustSay(t, ExitUsage, "cannot listen on "+file+": "+file+" is not a socket")
		if b, err := os.ReadFile(file); err != nil || string(b) != "not a socket\n" {
			t.Errorf("the file was touched: %q, %v", b, err)
		}
	})
}

// accept must not take over the socket of a QEMU that is listening on it.
func TestAcceptLeavesLiveSocket(t *testing.T) {
	sock := qmptest.StartQEMU(t)
	run(t, "", "accept", "--timeout", "10s", sock).
		mustSay(t, ExitUsage, "cannot listen on "+sock+": something is listening on "+sock)
	c := qmp.NewClient()
	if err := c.Connect(context.Background(), sock); err != nil {
		t.Fatalf("QEMU's monitor socket was replaced: %v", err)
	}
	defer c.Disconnect()
	if _, err := c.Execute(context.Background(), "query-status", nil); err != nil {
		t.Fatal(err)
	}
}

// A socket nobody listens on (left by a killed process) is replaced.
func TestAcceptReplacesStaleSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "stale.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Lstat(sock); err != nil {
		t.Fatal(err)
	}
	r := run(t, "", "accept", "--timeout", "200ms", sock)
	if r.code != ExitTimeout || r.stderrLines[0] != "qmpsh: waiting for QEMU; start it with: -qmp unix:"+sock {
		t.Fatalf("a stale socket was not replaced: %+v", r)
	}
}

// A flag's bad value is said in qmpsh's words, not strconv's or time's.
func TestFlagValueInOwnWords(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"events", "-s", "x.sock", "--count", "x"}, `invalid value "x" for --count: want a whole number`},
		{[]string{"exec", "-s", "x.sock", "--timeout", "soon", "query-status"}, `invalid value "soon" for --timeout: want a duration such as 500ms, 10s or 1m`},
		{[]string{"exec", "-s", "x.sock", "--parallel", "99999999999999999999", "query-status"}, `invalid value "99999999999999999999" for --parallel: out of range`},
	} {
		r := run(t, "", tc.args...)
		if r.code != ExitUsage || r.stderrLines[0] != "qmpsh: "+tc.want {
			t.Errorf("%v: exit %d, stderr %q; want %d, %q first", tc.args, r.code, r.stderr, ExitUsage, tc.want)
		}
		if strings.Contains(r.stderr, "strconv") || strings.Contains(r.stderr, "time:") {
			t.Errorf("%v: stderr has Go's wording: %q", tc.args, r.stderr)
		}
	}
}

// An error reply without a class or a description (QEMU always gives
// both) says so and shows what the server sent, not ": "; in fan-out
// too, where the desc says it.
func TestErrorReplyWithoutClass(t *testing.T) {
	server := func(errMember string) *qmptest.Server {
		s := qmptest.NewServer(func(c *qmptest.Conn) {
			c.Greet()
			if req, err := c.ReadRequest(); err == nil {
				c.Reply(req.ID, nil)
				if req, err := c.ReadRequest(); err == nil {
					id := "" // qmp.Client sends a lone call without one
					if req.ID != nil {
						id = `, "id": ` + string(req.ID)
					}
					c.WriteRaw([]byte(`{"error": ` + errMember + id + "}\r\n"))
					qmptest.Serve(c, true) // what exec asks to explain the error
				}
			}
		})
		t.Cleanup(s.Close)
		return s
	}
	empty := server(`{}`)
	run(t, "", "exec", "-s", empty.Addr, "query-status").expect(t, ExitQMPError, "",
		"the server answered query-status with an error without a class or a description (not QMP as QEMU speaks it): {}\n")
	descOnly := server(`{ "desc": "went wrong", "x": [1, 2] }`)
	run(t, "", "exec", "-s", descOnly.Addr, "query-status").expect(t, ExitQMPError, "",
		`the server answered query-status with an error without a class (not QMP as QEMU speaks it): {"desc":"went wrong","x":[1,2]}`+"\n")

	r := run(t, "", "exec", "-s", empty.Addr, "-s", descOnly.Addr, "query-status")
	if r.code != ExitQMPError || r.stderr != "" {
		t.Fatalf("fan-out: exit %d, stderr %q; want exit 1 and the errors on stdout", r.code, r.stderr)
	}
	for _, want := range []string{
		`{"target":"` + empty.Addr + `","error":{"class":"","desc":"the server answered query-status with an error without a class or a description (not QMP as QEMU speaks it): {}"}}`,
		`{"target":"` + descOnly.Addr + `","error":{"class":"","desc":"the server answered query-status with an error without a class (not QMP as QEMU speaks it): {\"desc\":\"went wrong\",\"x\":[1,2]}"}}`,
	} {
		if !strings.Contains(r.stdout, want+"\n") {
			t.Errorf("fan-out stdout %q\nlacks %s", r.stdout, want)
		}
	}
}

// With many targets, a client's warning names the target it came from.
func TestFanOutWarningNamesTarget(t *testing.T) {
	stray := qmptest.NewServer(func(c *qmptest.Conn) {
		c.Greet()
		if req, err := c.ReadRequest(); err == nil {
			c.Reply(req.ID, nil)
			if req, err := c.ReadRequest(); err == nil {
				c.WriteRaw([]byte(`{"return": {}, "id": 12345}` + "\r\n"))
				c.Reply(req.ID, map[string]int{"ok": 1})
				qmptest.Serve(c, true)
			}
		}
	})
	t.Cleanup(stray.Close)
	good := qmptest.NewServer(qmptest.Standard)
	t.Cleanup(good.Close)
	r := run(t, "", "exec", "-s", stray.Addr, "-s", good.Addr, "query-status")
	if r.code != ExitOK {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if want := "qmpsh: warning: " + stray.Addr + ": dropping a reply with an unknown id id=12345\n"; r.stderr != want {
		t.Errorf("stderr %q\nwant   %q", r.stderr, want)
	}
}

// An error reply is exec's answer even when the server never sends the
// schema asked for to explain it: exec reports the error, unexplained,
// after explainTimeout, not after --timeout.
func TestExecErrorExplainBounded(t *testing.T) {
	asked := make(chan struct{})
	s := qmptest.NewServer(func(c *qmptest.Conn) {
		c.Greet()
		c.Answer(func(req *qmptest.Request) bool {
			if req.Execute == "query-qmp-schema" {
				close(asked) // and never answered
				<-c.Done()
				return false
			}
			c.ReplyError(req.ID, "GenericError", "went wrong")
			return true
		})
	})
	t.Cleanup(s.Close)
	defer func(d time.Duration) { explainTimeout = d }(explainTimeout)
	explainTimeout = time.Millisecond

	done := make(chan result, 1)
	go func() { done <- run(t, "", "exec", "--timeout", "1h", "-s", s.Addr, "query-status") }()
	<-asked
	select {
	case r := <-done:
		r.expect(t, ExitQMPError, "", "GenericError: went wrong\n")
	case <-time.After(time.Minute):
		t.Fatal("exec still waits for the schema a minute after the error reply")
	}
}

// Where one cannot listen at all (no such directory) is the address's
// fault, nothing sent: accept and proxy both say so, exit 2, in the same
// words.
func TestCannotListen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	run(t, "", "accept", "--timeout", "10s", filepath.Join(dir, "a.sock")).
		mustSay(t, ExitUsage, "cannot listen on "+filepath.Join(dir, "a.sock")+": bind: no such file or directory")
	run(t, "", "proxy", "-s", filepath.Join(dir, "qmp.sock"), "--listen", filepath.Join(dir, "p.sock")).
		mustSay(t, ExitUsage, "cannot listen on "+filepath.Join(dir, "p.sock")+": bind: no such file or directory")
}
