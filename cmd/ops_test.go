package cmd

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// startQEMUTwoMonitors starts QEMU with a second QMP monitor, since a
// monitor serves one client at a time: qmpsh listens on the first while
// the test acts through the second. Events go to every monitor.
func startQEMUTwoMonitors(t *testing.T) (first, second string) {
	t.Helper()
	dir := ptyShortTempDir(t)
	second = filepath.Join(dir, "second.sock")
	first = qmptest.StartQEMU(t,
		"-chardev", "socket,id=second,path="+second+",server=on,wait=off",
		"-mon", "chardev=second,mode=control")
	return first, second
}

// negotiated is a writer for -v output that sends on ready each time a
// connection of qmpsh's has finished capabilities negotiation, and so
// listens for events. It counts empty returns: the commands it watches
// (events, which sends nothing but qmp_capabilities) get no other.
type negotiated struct {
	mu    sync.Mutex
	buf   strings.Builder
	seen  int
	ready chan struct{}
}

func newNegotiated() *negotiated { return &negotiated{ready: make(chan struct{}, 64)} }

func (n *negotiated) Write(p []byte) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.buf.Write(p)
	for c := strings.Count(n.buf.String(), "<-- {\"return\": {}}\n"); n.seen < c; n.seen++ {
		n.ready <- struct{}{}
	}
	return len(p), nil
}

func (n *negotiated) String() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.buf.String()
}

// start runs qmpsh in the background with -v output to n; the returned
// channel gives the exit status.
func (n *negotiated) start(t *testing.T, out *qmptest.Buffer, args ...string) <-chan int {
	t.Helper()
	done := make(chan int, 1)
	go func() {
		done <- Main(append([]string{"-v"}, args...), &IOStreams{In: strings.NewReader(""), Out: out, ErrOut: n})
	}()
	return done
}

func TestExecWaitEvent(t *testing.T) {
	sock := qmptest.StartQEMU(t)

	t.Run("EventBeforeReplyIsCaught", func(t *testing.T) {
		// QEMU sends STOP before stop's reply: exec listens before
		// sending, so it cannot miss it.
		r := run(t, "", "exec", "-s", sock, "--wait-event", "STOP", "stop")
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if r.code != ExitOK || len(lines) != 2 || lines[0] != "{}" ||
			!strings.HasPrefix(lines[1], `{"timestamp":{"seconds":`) || !strings.Contains(lines[1], `"event":"STOP"`) {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		run(t, "", "exec", "-s", sock, "--wait-event", "RESUME", "cont").mustExit(t, ExitOK)
	})
	t.Run("TimeoutIsStatus4", func(t *testing.T) {
		r := run(t, "", "exec", "-s", sock, "--wait-event", "STOP", "--wait-timeout", "50ms", "query-status")
		if r.code != ExitTimeout || !strings.Contains(r.stdout, `"status":"running"`) ||
			r.stderr != "qmpsh: "+sock+": timed out after 50ms waiting for event STOP\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		r = run(t, "", "exec", "-s", sock, "--wait-event", "STOP", "--match", "reason=x", "--wait-timeout", "50ms", "query-status")
		if r.code != ExitTimeout || r.stderr != "qmpsh: "+sock+": timed out after 50ms waiting for event STOP with reason=x\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("QuitThenShutdown", func(t *testing.T) {
		// A fake server, as QEMU would exit: quit emits SHUTDOWN and
		// hangs up; the event that came before the hang-up counts.
		s := qmptest.NewServer(qmptest.Standard)
		defer s.Close()
		r := run(t, "", "exec", "-s", s.Addr, "--wait-event", "SHUTDOWN", "quit")
		if r.code != ExitOK || !strings.Contains(r.stdout, `"event":"SHUTDOWN"`) {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("ConnectionLostIsStatus3", func(t *testing.T) {
		// Negotiation and query-status are answered; the schema, asked
		// for to check the event's name, is not known (nothing checked).
		s := qmptest.NewServer(func(c *qmptest.Conn) {
			c.Greet()
			for n := 0; n < 2; {
				req, err := c.ReadRequest()
				if err != nil {
					return
				}
				if req.Execute == "query-qmp-schema" || req.Execute == "query-commands" {
					c.ReplyError(req.ID, "CommandNotFound", "The command "+req.Execute+" has not been found")
					continue
				}
				c.Reply(req.ID, map[string]any{})
				n++
			}
			c.Close()
		})
		defer s.Close()
		r := run(t, "", "exec", "-s", s.Addr, "--wait-event", "STOP", "query-status")
		if r.code != ExitConnection || r.stdout != "{}\n" ||
			r.stderr != "qmpsh: "+s.Addr+": connection lost while waiting for event STOP: connection closed by peer\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
}

func (r result) mustExit(t *testing.T, want int) {
	t.Helper()
	if r.code != want {
		t.Fatalf("exit %d, want %d; stdout %q, stderr %q", r.code, want, r.stdout, r.stderr)
	}
}

func TestEvents(t *testing.T) {
	sock, second := startQEMUTwoMonitors(t)

	t.Run("Count", func(t *testing.T) {
		n := newNegotiated()
		var out qmptest.Buffer
		done := n.start(t, &out, "events", "-s", sock, "--count", "2")
		<-n.ready
		run(t, "", "exec", "-s", second, "stop").mustExit(t, ExitOK)
		run(t, "", "exec", "-s", second, "cont").mustExit(t, ExitOK)
		if code := <-done; code != ExitOK {
			t.Fatalf("exit %d, stderr %q", code, n.String())
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if len(lines) != 2 || !strings.Contains(lines[0], `"event":"STOP"`) || !strings.Contains(lines[1], `"event":"RESUME"`) {
			t.Fatalf("stdout %q", out.String())
		}
		for _, l := range lines {
			var ev struct {
				Event     string
				Timestamp struct{ Seconds, Microseconds int64 }
			}
			if json.Unmarshal([]byte(l), &ev) != nil || ev.Timestamp.Seconds == 0 || strings.Contains(l, " ") {
				t.Errorf("not a compact event with a timestamp: %q", l)
			}
		}
	})
	t.Run("Name", func(t *testing.T) {
		n := newNegotiated()
		var out qmptest.Buffer
		done := n.start(t, &out, "events", "-s", sock, "--name", "RESUME", "--count", "1")
		<-n.ready
		run(t, "", "exec", "-s", second, "stop").mustExit(t, ExitOK)
		run(t, "", "exec", "-s", second, "cont").mustExit(t, ExitOK)
		if code := <-done; code != ExitOK || strings.Count(out.String(), "\n") != 1 || !strings.Contains(out.String(), `"event":"RESUME"`) {
			t.Fatalf("exit %d, stdout %q", code, out.String())
		}
	})
	t.Run("TimeoutIsStatus4", func(t *testing.T) {
		// --timeout bounds the whole run, connecting included: leave a
		// loaded machine the time to negotiate with QEMU.
		r := run(t, "", "events", "-s", sock, "--timeout", "1s")
		if r.code != ExitTimeout || r.stdout != "" || r.stderr != "qmpsh: "+sock+": timed out after 1s waiting for events\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("ConnectionLostIsStatus3", func(t *testing.T) {
		s := qmptest.NewServer(func(c *qmptest.Conn) {
			c.Greet()
			if req, err := c.ReadRequest(); err == nil {
				c.Reply(req.ID, map[string]any{})
				c.Event("STOP", nil)
				c.Close()
			}
		})
		defer s.Close()
		r := run(t, "", "events", "-s", s.Addr)
		if r.code != ExitConnection || !strings.Contains(r.stdout, `"event":"STOP"`) ||
			r.stderr != "qmpsh: "+s.Addr+": connection lost while waiting for events: connection closed by peer\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
}

// fanLine is one target's line of fan-out output.
type fanLine struct {
	Target string
	Return json.RawMessage
	Event  json.RawMessage
	Error  *struct{ Class, Desc string }
}

func parseFanLines(t *testing.T, stdout string) map[string]fanLine {
	t.Helper()
	got := map[string]fanLine{}
	for _, l := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
		var fl fanLine
		if err := json.Unmarshal([]byte(l), &fl); err != nil || fl.Target == "" {
			t.Fatalf("not a target line: %q (%v)", l, err)
		}
		if _, dup := got[fl.Target]; dup {
			t.Fatalf("two lines for %s", fl.Target)
		}
		got[fl.Target] = fl
	}
	return got
}

func TestExecFanOut(t *testing.T) {
	// Two QEMUs and a storage daemon, reached through a glob over
	// links in one directory, and a socket that is not there.
	dir := ptyShortTempDir(t)
	for name, sock := range map[string]string{
		"a.qmp": qmptest.StartQEMU(t),
		"b.qmp": qmptest.StartQEMU(t),
		"c.qmp": qmptest.StartStorageDaemon(t),
	} {
		if err := os.Symlink(sock, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	absent := filepath.Join(dir, "gone.sock")

	r := run(t, "", "exec", "-s", filepath.Join(dir, "*.qmp"), "-s", absent, "--parallel", "2", "query-version")
	got := parseFanLines(t, r.stdout)
	var targets []string
	for tg := range got {
		targets = append(targets, tg)
	}
	sort.Strings(targets)
	want := []string{filepath.Join(dir, "a.qmp"), filepath.Join(dir, "b.qmp"), filepath.Join(dir, "c.qmp"), absent}
	sort.Strings(want)
	if strings.Join(targets, " ") != strings.Join(want, " ") {
		t.Fatalf("targets %v, want %v", targets, want)
	}
	for _, tg := range want[:3] {
		if tg == absent {
			continue
		}
		var v struct{ QEMU struct{ Major int } }
		if json.Unmarshal(got[tg].Return, &v) != nil || v.QEMU.Major == 0 || got[tg].Error != nil {
			t.Errorf("%s: %+v", tg, got[tg])
		}
	}
	if e := got[absent].Error; e == nil || e.Class != "ConnectionError" ||
		e.Desc != "cannot connect to "+absent+": no such file or directory" {
		t.Errorf("absent socket's line: %+v", got[absent])
	}
	if r.code != ExitConnection || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q: want 3 and nothing on stderr", r.code, r.stderr)
	}

	t.Run("WorstStatusAndErrorClass", func(t *testing.T) {
		// query-status exists in QEMU, not in the storage daemon.
		r := run(t, "", "exec", "-s", filepath.Join(dir, "*.qmp"), "query-status")
		got := parseFanLines(t, r.stdout)
		if e := got[filepath.Join(dir, "c.qmp")].Error; r.code != ExitQMPError || e == nil || e.Class != "CommandNotFound" {
			t.Fatalf("exit %d, stdout %q", r.code, r.stdout)
		}
		if got[filepath.Join(dir, "a.qmp")].Error != nil {
			t.Errorf("a.qmp failed: %q", r.stdout)
		}
	})
	t.Run("GlobMatchingNothing", func(t *testing.T) {
		r := run(t, "", "exec", "-s", filepath.Join(dir, "*.nothing"), "query-status")
		if r.code != ExitUsage || !strings.Contains(r.stderr, "no socket matches") {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("WaitEvent", func(t *testing.T) {
		a, b := filepath.Join(dir, "a.qmp"), filepath.Join(dir, "b.qmp")
		r := run(t, "", "exec", "-s", a, "-s", b, "--wait-event", "STOP", "stop")
		got := parseFanLines(t, r.stdout)
		for _, tg := range []string{a, b} {
			if string(got[tg].Return) != "{}" || !strings.Contains(string(got[tg].Event), `"event":"STOP"`) {
				t.Errorf("%s: %+v", tg, got[tg])
			}
		}
		if r.code != ExitOK {
			t.Fatalf("exit %d", r.code)
		}
	})
}

func TestEventsFanOut(t *testing.T) {
	a, a2 := startQEMUTwoMonitors(t)
	b, b2 := startQEMUTwoMonitors(t)
	absent := filepath.Join(ptyShortTempDir(t), "gone.sock")
	n := newNegotiated()
	var out qmptest.Buffer
	done := n.start(t, &out, "events", "-s", a, "-s", b, "-s", absent, "--count", "1", "--name", "STOP")
	<-n.ready
	<-n.ready
	run(t, "", "exec", "-s", a2, "-s", b2, "stop").mustExit(t, ExitOK)
	if code := <-done; code != ExitConnection {
		t.Fatalf("exit %d, want 3; stdout %q", code, out.String())
	}
	got := parseFanLines(t, out.String())
	for _, tg := range []string{a, b} {
		if !strings.Contains(string(got[tg].Event), `"event":"STOP"`) {
			t.Errorf("%s: %+v", tg, got[tg])
		}
	}
	if e := got[absent].Error; e == nil || e.Class != "ConnectionError" {
		t.Errorf("absent: %+v", got[absent])
	}
}

// TestShellSendfd passes real files to QEMU with the sendfd built-in.
func TestShellSendfd(t *testing.T) {
	sock := qmptest.StartQEMU(t)
	file := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(file, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("Getfd", func(t *testing.T) {
		// closefd succeeds only for a name QEMU holds a descriptor for.
		r := run(t, "sendfd "+file+" fdname=f0\nclosefd fdname=f0\nclosefd fdname=f0\n", "connect", sock)
		if r.code != ExitQMPError || r.stdout != "{}\n{}\n" ||
			r.stderr != "GenericError: File descriptor named 'f0' not found\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("AddFd", func(t *testing.T) {
		r := run(t, "sendfd '"+file+"' fdset-id=7 opaque=hello mode=ro\nquery-fdsets\n", "connect", sock)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		var added struct {
			FdsetID int `json:"fdset-id"`
			Fd      int
		}
		var sets []struct {
			FdsetID int `json:"fdset-id"`
			Fds     []struct {
				Fd     int
				Opaque string
			}
		}
		if r.code != ExitOK || len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &added) != nil ||
			json.Unmarshal([]byte(lines[1]), &sets) != nil {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		if added.FdsetID != 7 || len(sets) != 1 || sets[0].FdsetID != 7 || len(sets[0].Fds) != 1 ||
			sets[0].Fds[0].Fd != added.Fd || sets[0].Fds[0].Opaque != "hello" {
			t.Fatalf("add-fd returned %+v, query-fdsets %+v", added, sets)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "missing")
		r := run(t, "sendfd "+missing+" fdname=x\nsendfd\nsendfd "+file+" fdname=x fdset-id=1\nsendfd "+file+" mode=rx\nquery-status\n", "connect", sock)
		want := "sendfd: open " + missing + ": no such file or directory\n" +
			"sendfd: expected a file, e.g. sendfd /path/to/disk.img fdname=disk0\n" +
			"sendfd: fdname= (getfd) does not go with fdset-id= or opaque= (add-fd)\n" +
			"sendfd: mode must be rw, ro or wo, not \"rx\"\n"
		if r.code != ExitQMPError || r.stderr != want || !strings.Contains(r.stdout, `"running"`) {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("FIFOAndDirectory", func(t *testing.T) {
		// A FIFO opened read-only or write-only used to block in
		// open(2) until its other end was opened: for ever, beyond
		// Ctrl-C. Now the read end goes at once, the write end with
		// no reader is refused, and so is a directory.
		dir := t.TempDir()
		rfifo, wfifo := filepath.Join(dir, "r.fifo"), filepath.Join(dir, "w.fifo")
		for _, p := range []string{rfifo, wfifo} {
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		in := "sendfd " + rfifo + " fdname=r mode=ro\nsendfd " + wfifo + " fdname=w mode=wo\nsendfd " + dir + " fdname=d mode=ro\nquery-status\n"
		done := make(chan result, 1)
		go func() { done <- run(t, in, "connect", sock) }()
		var r result
		select {
		case r = <-done:
		case <-time.After(time.Minute):
			// Open the FIFOs' other ends to release the shell.
			for _, p := range []string{rfifo, wfifo} {
				if f, err := os.OpenFile(p, os.O_RDWR, 0); err == nil {
					defer f.Close()
				}
			}
			r = <-done
			t.Fatalf("sendfd of a FIFO hung in open; exit %d, stderr %q", r.code, r.stderr)
		}
		want := "sendfd: " + wfifo + " is a FIFO that nothing reads yet: start its reader first, or pass it mode=rw\n" +
			"sendfd: " + dir + " is a directory: pass a file\n"
		if r.code != ExitQMPError || r.stderr != want || !strings.HasPrefix(r.stdout, "{}\n") || !strings.Contains(r.stdout, `"running"`) {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
}

// TestConnectReconnect kills QEMU under a piped shell with --reconnect,
// types a command while it is gone, and starts QEMU again on the same
// socket.
func TestConnectReconnect(t *testing.T) {
	path := filepath.Join(ptyShortTempDir(t), "qmp.sock")
	q := qmptest.StartQEMUAt(t, path)
	stdin, in := io.Pipe()
	out, errOut := new(qmptest.Buffer), new(qmptest.Buffer)
	done := make(chan int, 1)
	go func() {
		done <- Main([]string{"connect", "--reconnect", path}, &IOStreams{In: stdin, Out: out, ErrOut: errOut})
	}()
	t.Cleanup(func() { in.Close() })

	io.WriteString(in, "query-status\n")
	out.WaitFor(t, `"status":"running"`, 1)

	q.Kill()
	// If QEMU dies with bytes from us still unread in its socket, the
	// kernel reports a reset ("read: connection reset by peer") rather
	// than an end ("connection closed by peer").
	errOut.WaitFor(t, " by peer; reconnecting\n", 1)
	if lost := errOut.String(); !strings.Contains(lost, "connection lost: connection closed by peer;") &&
		!strings.Contains(lost, "connection reset by peer;") {
		t.Fatalf("no loss notice:\n%s", lost)
	}
	io.WriteString(in, "query-status\n")
	errOut.WaitFor(t, "not sent: disconnected, reconnecting (", 1)
	// How redialling goes is said in qmpsh's words, not Go's dial error
	// (TestRedialSaysWhy has the exact words).
	if notice := errOut.String(); strings.Contains(notice, "failed to establish") || strings.Contains(notice, "dial unix") {
		t.Errorf("redial notice in Go's words:\n%s", notice)
	}

	qmptest.StartQEMUAt(t, path)
	errOut.WaitFor(t, "reconnected to QEMU ", 1)
	io.WriteString(in, "query-status\nstop\n")
	out.WaitFor(t, `"event":"STOP"`, 1)
	in.Close()
	if code := <-done; code != ExitConnection {
		t.Fatalf("exit %d, want 3 (a command was refused); stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	// The last line says why the status is 3 after the shell came back,
	// not as if the connection had just been lost.
	if last := errOut.String()[strings.LastIndex(strings.TrimSuffix(errOut.String(), "\n"), "\n")+1:]; !strings.HasPrefix(last, "qmpsh: "+path+": commands were refused or cut off while the connection was down (connection lost: ") {
		t.Errorf("last line %q", last)
	}
	if n := strings.Count(out.String(), `"status":"running"`); n != 2 {
		t.Errorf("%d query-status results, want 2 (before and after):\n%s", n, out.String())
	}
	// The notices went to stderr: stdout is results and events only.
	requireJSONLines(t, result{stdout: out.String(), stderr: errOut.String()})
}

// TestRedialSaysWhy: a failed reconnection attempt, which the shell
// shows as "the last: ...", names the address and the cause in qmpsh's
// words, as a failed first connection does.
func TestRedialSaysWhy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gone.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close() // the socket file stays, with no one listening: refused
	client := qmp.NewClient()
	defer client.Disconnect()
	err = redialer(client, path, 10*time.Second)(context.Background())
	if want := "cannot connect to " + path + ": connection refused"; err == nil || err.Error() != want {
		t.Fatalf("redial = %v, want %q", err, want)
	}
}

func TestTargetsTCPIsNotAGlob(t *testing.T) {
	addrs, fanout, err := targets(os.Getenv, []string{"[::1]:4444"})
	if err != nil || fanout || len(addrs) != 1 || addrs[0] != "[::1]:4444" {
		t.Fatalf("targets([::1]:4444) = %v, %v, %v", addrs, fanout, err)
	}
}

func TestExecFanOutWaitTimeoutKeepsReturn(t *testing.T) {
	a, b := qmptest.StartQEMU(t), qmptest.StartQEMU(t)
	r := run(t, "", "exec", "-s", a, "-s", b, "--wait-event", "RESUME", "--wait-timeout", "50ms", "query-status")
	got := parseFanLines(t, r.stdout)
	for _, tg := range []string{a, b} {
		if e := got[tg].Error; e == nil || e.Class != "Timeout" || !strings.Contains(string(got[tg].Return), `"running"`) {
			t.Errorf("%s: %+v", tg, got[tg])
		}
	}
	r.mustExit(t, ExitTimeout)
}

// TestTargetsOneServerTwice: two spellings of one socket are one target,
// so that a command is not run twice on one VM; the first spelling names
// it. Output still names the target, as for any repeated -s.
func TestTargetsOneServerTwice(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "qmp.sock")
	rel, err := filepath.Rel(mustGetwd(t), sock)
	if err != nil {
		t.Fatal(err)
	}
	for _, sockets := range [][]string{
		{sock, "unix:" + sock},
		{"unix:" + sock, sock, rel, filepath.Join(dir, ".", "qmp.sock")},
		{"tcp:127.0.0.1:4444", "127.0.0.1:4444"},
	} {
		addrs, fanout, err := targets(os.Getenv, sockets)
		if err != nil || !fanout || len(addrs) != 1 || addrs[0] != sockets[0] {
			t.Errorf("targets(%q) = %q, %v, %v; want [%q], fan-out", sockets, addrs, fanout, err, sockets[0])
		}
	}
	if addrs, _, err := targets(os.Getenv, []string{"tcp:127.0.0.1:4444", "tls:127.0.0.1:4444"}); err != nil || len(addrs) != 2 {
		t.Errorf("tcp: and tls: of one port are two targets, got %q, %v", addrs, err)
	}
}

func mustGetwd(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

// TestOneServerCommandsRefuseTwoSockets: a command that talks to one
// server refuses a second -s (exit 2, nothing sent) instead of taking
// the last one quietly; the message names both.
func TestOneServerCommandsRefuseTwoSockets(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.sock"), filepath.Join(dir, "b.sock")
	for _, args := range [][]string{
		{"job", "wait", "-s", a, "-s", b, "j1"},
		{"job", "list", "-s", a, "--socket", b},
		{"migrate", "-s", a, "-s", b, "tcp:127.0.0.1:1"},
		{"schema", "--socket=" + a, "-s", b},
		{"proxy", "-s", a, "-s", b, "--listen", filepath.Join(dir, "p.sock")},
		{"ga", "exec", "-s", a, "-s", b, "guest-ping"},
	} {
		r := run(t, "", args...)
		r.mustExit(t, ExitUsage)
		if !strings.Contains(r.stderr, "-s given twice") || !strings.Contains(r.stderr, a) || !strings.Contains(r.stderr, b) || r.stdout != "" {
			t.Errorf("%q: stdout %q, stderr %q", args, r.stdout, r.stderr)
		}
	}
	// The same server twice, however spelled, is one server.
	sock := qmptest.StartQEMU(t)
	run(t, "", "schema", "-s", sock, "-s", sock, "query-status").mustExit(t, ExitOK)
	run(t, "", "schema", "-s", sock, "--socket", "unix:"+sock, "query-status").mustExit(t, ExitOK)
}
