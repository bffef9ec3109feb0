package cmd

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qmpsh/qmpsh/pkg/protocol"
	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// proxyRun is a qmpsh proxy running in this process.
type runningProxy struct {
	path   string
	stderr *qmptest.Buffer
	sigs   *fakeSignals
	code   chan int
}

func startProxyCmd(t *testing.T, qemu string, extra ...string) *runningProxy {
	t.Helper()
	dir, err := os.MkdirTemp("", "pxc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &runningProxy{
		path:   filepath.Join(dir, "p.sock"),
		stderr: new(qmptest.Buffer),
		sigs:   &fakeSignals{},
		code:   make(chan int, 1),
	}
	f := testFactory(strings.NewReader(""), io.Discard, p.stderr, nil, p.sigs)
	args := append([]string{"proxy", "-s", qemu, "--listen", p.path}, extra...)
	go func() { p.code <- Execute(f, args) }()
	t.Cleanup(func() {
		p.sigs.raise(syscall.SIGTERM)
		<-p.code
	})
	p.stderr.WaitFor(t, "listening on unix:"+p.path, 1)
	return p
}

func (p *runningProxy) exit(t *testing.T) int {
	t.Helper()
	select {
	case c := <-p.code:
		p.code <- c // for Cleanup
		return c
	case <-time.After(time.Minute):
		t.Fatalf("the proxy did not exit; stderr:\n%s", p.stderr)
		return -1
	}
}

// Two qmpsh connect shells and qmpsh events through one proxy at once:
// each shell gets its own replies, and everyone gets every event.
func TestProxyShellsAndEvents(t *testing.T) {
	p := startProxyCmd(t, qmptest.StartQEMU(t), "-v")

	var evOut qmptest.Buffer
	evDone := make(chan int, 1)
	go func() {
		evDone <- Main([]string{"events", "-s", p.path, "--count", "2"}, &IOStreams{In: strings.NewReader(""), Out: &evOut, ErrOut: io.Discard})
	}()
	// The events client is in once the proxy has answered its
	// negotiation (-v shows the proxy's traffic).
	p.stderr.WaitFor(t, `(on unix:`+p.path+`) --> {"return": {}`, 1)

	type shell struct {
		in   *io.PipeWriter
		out  *qmptest.Buffer
		code chan int
	}
	open := func() *shell {
		r, w := io.Pipe()
		s := &shell{in: w, out: new(qmptest.Buffer), code: make(chan int, 1)}
		go func() {
			s.code <- Main([]string{"connect", p.path}, &IOStreams{In: r, Out: s.out, ErrOut: io.Discard})
		}()
		return s
	}
	a, b := open(), open()
	io.WriteString(a.in, "stop\n")
	a.out.WaitFor(t, "{}\n", 1)
	io.WriteString(b.in, "query-status\n")
	b.out.WaitFor(t, `"status":"paused"`, 1)
	io.WriteString(b.in, "cont\n")
	b.out.WaitFor(t, "{}\n", 1)
	io.WriteString(a.in, "query-status\n")
	a.out.WaitFor(t, `"status":"running"`, 1)
	a.in.Close()
	b.in.Close()
	for name, s := range map[string]*shell{"a": a, "b": b} {
		if code := <-s.code; code != 0 {
			t.Errorf("shell %s: exit %d, stdout:\n%s", name, code, s.out)
		}
		// Each shell saw both events too, and its own replies only.
		out := s.out.String()
		if !strings.Contains(out, `"event":"STOP"`) || !strings.Contains(out, `"event":"RESUME"`) {
			t.Errorf("shell %s did not see both events:\n%s", name, out)
		}
		if strings.Count(out, `"status":`) != 1 {
			t.Errorf("shell %s got another's reply:\n%s", name, out)
		}
	}
	if code := <-evDone; code != 0 {
		t.Fatalf("events: exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(evOut.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"STOP"`) || !strings.Contains(lines[1], `"RESUME"`) {
		t.Errorf("events printed:\n%s", evOut.String())
	}
	if !strings.Contains(p.stderr.String(), "client 3 (on unix:") {
		t.Errorf("-v does not label the traffic with the client:\n%s", p.stderr)
	}
}

// --read-only: query-status passes; quit and human-monitor-command are
// refused with an error naming the command, and QEMU keeps running.
func TestProxyReadOnly(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "traffic.log")
	p := startProxyCmd(t, qmptest.StartQEMU(t), "--read-only", "--log", logFile)
	if r := run(t, "", "exec", "-s", p.path, "query-status"); r.code != ExitOK {
		t.Fatalf("query-status: exit %d, %s", r.code, r.stderr)
	}
	for _, args := range [][]string{{"quit"}, {"human-monitor-command", "command-line=quit"}} {
		r := run(t, "", append([]string{"exec", "-s", p.path}, args...)...)
		if r.code != ExitQMPError || !strings.Contains(r.stderr, "GenericError") || !strings.Contains(r.stderr, "'"+args[0]+"'") {
			t.Errorf("%s: exit %d, stderr %q", args[0], r.code, r.stderr)
		}
	}
	if r := run(t, "", "exec", "-s", p.path, "query-status"); r.code != ExitOK || !strings.Contains(r.stdout, "running") {
		t.Fatalf("QEMU after the refusals: exit %d, %s %s", r.code, r.stdout, r.stderr)
	}
	// --log has every client's traffic, labelled, and QEMU's.
	b, _ := os.ReadFile(logFile)
	for _, want := range []string{`client 2 (on unix:` + p.path + `) <-- {"execute":"quit"`, `qemu --> {"execute":"query-status"}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("--log file lacks %q:\n%s", want, b)
		}
	}
}

// sendfd in a qmpsh connect through the proxy: the descriptor reaches
// QEMU with getfd.
func TestProxySendFD(t *testing.T) {
	p := startProxyCmd(t, qmptest.StartQEMU(t))
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, "sendfd "+file+" fdname=f\nclosefd fdname=f\n", "connect", p.path)
	if r.code != ExitOK || strings.Count(r.stdout, "{}") != 2 {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// QEMU going away ends the proxy with exit status 3, and its socket is
// removed.
func TestProxyQEMUGoesAway(t *testing.T) {
	q := qmptest.StartQEMUAt(t, filepath.Join(shortTempDir(t), "q.sock"))
	p := startProxyCmd(t, q.Path)
	if r := run(t, "", "exec", "-s", p.path, "query-status"); r.code != ExitOK {
		t.Fatalf("query-status: exit %d, %s", r.code, r.stderr)
	}
	q.Kill()
	if code := p.exit(t); code != ExitConnection {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, ExitConnection, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "went away") {
		t.Errorf("stderr does not say QEMU went away:\n%s", p.stderr)
	}
	if _, err := os.Lstat(p.path); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
}

// SIGTERM ends the proxy with status 0, removing its socket and leaving
// QEMU running.
func TestProxySIGTERM(t *testing.T) {
	qemu := qmptest.StartQEMU(t)
	p := startProxyCmd(t, qemu)
	if n := p.sigs.raise(syscall.SIGTERM); n != 1 {
		t.Fatalf("SIGTERM reached %d subscribers, want 1", n)
	}
	if code := p.exit(t); code != ExitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, p.stderr)
	}
	if _, err := os.Lstat(p.path); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
	if r := run(t, "", "exec", "-s", qemu, "query-status"); r.code != ExitOK {
		t.Fatalf("QEMU after the proxy: exit %d, %s", r.code, r.stderr)
	}
}

func TestProxyUsage(t *testing.T) {
	qemu := qmptest.StartQEMU(t)
	notSocket := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notSocket, []byte("keep"), 0o600)
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		msg  string
	}{
		{"NoListen", []string{"proxy", "-s", qemu}, "--listen"},
		{"BadGlob", []string{"proxy", "-s", qemu, "--listen", notSocket + ".s", "--deny", "["}, "glob"},
		{"NotASocket", []string{"proxy", "-s", qemu, "--listen", notSocket}, "not a socket"},
		{"LiveSocket", []string{"proxy", "-s", qemu, "--listen", qemu}, "listen"},
		{"SameTwice", []string{"proxy", "-s", qemu, "--listen", notSocket + ".s", "--listen", "unix:" + notSocket + ".s"},
			"--listen unix:" + notSocket + ".s is where --listen " + notSocket + ".s listens already"},
		{"SameTwiceRelative", []string{"proxy", "-s", qemu, "--listen", "p.sock", "--listen", filepath.Join(cwd, "p.sock")},
			"is where --listen p.sock listens already"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, "", tc.args...)
			if r.code != ExitUsage || !strings.Contains(r.stderr, tc.msg) {
				t.Errorf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, ExitUsage, tc.msg)
			}
		})
	}
	if b, _ := os.ReadFile(notSocket); string(b) != "keep" {
		t.Error("the file that is not a socket was replaced")
	}
}

func shortTempDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "pxq")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// With --reconnect, the proxy outlives QEMU: a qmpsh connect --reconnect
// shell through it comes back by itself once QEMU is restarted on the
// same socket.
func TestProxyReconnect(t *testing.T) {
	qpath := filepath.Join(shortTempDir(t), "q.sock")
	q := qmptest.StartQEMUAt(t, qpath)
	p := startProxyCmd(t, q.Path, "--reconnect")
	r, w := io.Pipe()
	out := new(qmptest.Buffer) // stdout and stderr: notices go to one or the other
	errOut := out
	code := make(chan int, 1)
	go func() {
		code <- Main([]string{"connect", "--reconnect", p.path}, &IOStreams{In: r, Out: out, ErrOut: out})
	}()
	io.WriteString(w, "stop\n")
	out.WaitFor(t, "{}\n", 1)
	q.Kill()
	p.stderr.WaitFor(t, "QEMU went away; reconnecting", 1)
	errOut.WaitFor(t, "connection lost", 1)
	qmptest.StartQEMUAt(t, qpath)
	errOut.WaitFor(t, "reconnected", 1)
	p.stderr.WaitFor(t, "reconnected to QEMU; serving again", 1) // the proxy says so too
	io.WriteString(w, "query-status\n")
	out.WaitFor(t, `"status":"running"`, 1) // a new QEMU, running
	w.Close()
	if c := <-code; c != ExitOK {
		t.Errorf("shell: exit %d; stderr:\n%s", c, errOut)
	}
	select {
	case c := <-p.code:
		t.Fatalf("the proxy exited (%d); stderr:\n%s", c, p.stderr)
	default:
	}
}

func TestUpstreamLost(t *testing.T) {
	err := upstreamLost("/tmp/q.sock", fmt.Errorf("reading: %w", &protocol.MessageTooLongError{Limit: 256 << 20}))
	if exitCode(err) != ExitConnection || !strings.Contains(err.Error(), "over the proxy's 256 MiB limit") {
		t.Errorf("too long: %v (exit %d)", err, exitCode(err))
	}
	err = upstreamLost("/tmp/q.sock", protocol.ErrClosedByPeer)
	if exitCode(err) != ExitConnection || !strings.Contains(err.Error(), "went away") {
		t.Errorf("closed: %v (exit %d)", err, exitCode(err))
	}
}
