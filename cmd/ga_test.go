package cmd

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/ga/gatest"
	"github.com/qmpsh/qmpsh/pkg/protocol"
	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

func TestGAExec(t *testing.T) {
	a := gatest.StartAgent(t)
	run(t, "", "ga", "exec", "-s", a.Path, "guest-ping").expect(t, ExitOK, "{}\n", "")
	run(t, "", "ga", "exec", "-s", a.Path, `{"execute": "guest-ping"}`).expect(t, ExitOK, "{}\n", "")
	run(t, "", "ga", "exec", "-s", a.Path, "no-such-command").
		expect(t, ExitQMPError, "", "CommandNotFound: The command no-such-command has not been found\n")
	t.Setenv("QGA_SOCKET", a.Path)
	r := run(t, "", "ga", "exec", "guest-info")
	if r.code != ExitOK || !strings.Contains(r.stdout, `"supported_commands"`) {
		t.Errorf("guest-info: exit %d, stdout %.200q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestGAExecUsage(t *testing.T) {
	run(t, "", "ga").mustSayUsage(t, "ga needs a command: connect, exec, run or cp")
	run(t, "", "ga", "exce").mustSayUsage(t, `unknown ga command "exce"`)
	r := run(t, "", "ga", "exec")
	r.mustSayUsage(t, "ga exec needs a command")
	r = run(t, "", "ga", "exec", "-s", "/nonexistent/qga.sock", "guest-ping", "bad")
	if r.code != ExitUsage {
		t.Errorf("a word without = : exit %d, stderr %q; want %d", r.code, r.stderr, ExitUsage)
	}
	run(t, "", "ga", "exec", "guest-ping").mustSayUsage(t, "QGA_SOCKET")
	run(t, "", "ga", "exec", "-s", "/nonexistent/qga.sock", "guest-ping").mustSay(t, ExitConnection, "/nonexistent/qga.sock")
	t.Setenv("QGA_SOCKET", "tcp:")
	run(t, "", "ga", "exec", "guest-ping").mustSay(t, ExitUsage, "QGA_SOCKET='tcp:': expected tcp:HOST:PORT")
	// A malformed vsock address names nothing to connect to either.
	for _, a := range []string{"vsock:", "vsock:x", "vsock:3", "vsock:1:99999999999"} {
		run(t, "", "ga", "exec", "-s", a, "guest-ping").mustSay(t, ExitUsage, "want vsock:CID:PORT")
	}
	t.Setenv("QGA_SOCKET", "vsock:x")
	run(t, "", "ga", "exec", "guest-ping").mustSay(t, ExitUsage, "QGA_SOCKET='vsock:x': bad vsock address")
}

// A guest whose agent has not started: the socket takes the connection,
// nobody answers the sync.
func TestGASilentAgent(t *testing.T) {
	f := gatest.StartFake(t, nil)
	for _, args := range [][]string{
		{"ga", "exec", "--timeout", "200ms", "-s", f.Path, "guest-ping"},
		{"ga", "run", "--timeout", "200ms", "-s", f.Path, "--", "true"},
		{"ga", "cp", "--timeout", "200ms", "-s", f.Path, ":/etc/hostname", "-"},
	} {
		run(t, "", args...).mustSay(t, ExitTimeout, f.Path, "the guest agent did not answer within 200ms", "is qemu-ga running")
	}
	// A bound under a millisecond is said as given, not as 1ms.
	run(t, "", "ga", "exec", "--timeout", "300us", "-s", f.Path, "guest-ping").
		mustSay(t, ExitTimeout, f.Path, "the guest agent did not answer within 300µs")
}

// guest-shutdown is sent and not waited for; it goes to a fake agent,
// never the real one, which would shut this machine down.
func TestGANoReplyCommand(t *testing.T) {
	f := gatest.StartFake(t, func(req gatest.Request) map[string]any {
		if req.Execute == "guest-shutdown" {
			return nil
		}
		return map[string]any{"return": map[string]any{}}
	})
	run(t, "", "ga", "exec", "-s", f.Path, "guest-shutdown", "mode=powerdown").expect(t, ExitOK, "", "")
	for req := range f.Received {
		if req.Execute == "guest-shutdown" {
			if string(req.Arguments) != `{"mode":"powerdown"}` {
				t.Errorf("arguments %s", req.Arguments)
			}
			break
		}
	}
}

func TestGARun(t *testing.T) {
	a := gatest.StartAgent(t)
	ga := func(stdin string, args ...string) result {
		return run(t, stdin, append([]string{"ga", "run", "-s", a.Path, "--"}, args...)...)
	}
	ga("", "/bin/sh", "-c", "echo out; echo err >&2").expect(t, ExitOK, "out\n", "err\n")
	ga("", "/bin/sh", "-c", "exit 42").expect(t, 42, "", "")
	ga("line one\nline two\n", "/bin/cat").expect(t, ExitOK, "line one\nline two\n", "")
	run(t, "not for cat\n", "ga", "run", "-n", "-s", a.Path, "--", "/bin/cat").expect(t, ExitOK, "", "")
	ga("", "/bin/sh", "-c", "kill -KILL $$").expect(t, 128+9, "", "")
	r := run(t, "", "ga", "run", "-s", a.Path, "--env", "A=1", "--env", "B=x y", "--", "/bin/sh", "-c", `echo "$A|$B"`)
	r.expect(t, ExitOK, "1|x y\n", "")
	// Flags after the program are its own.
	ga("", "/bin/echo", "-n", "--timeout").expect(t, ExitOK, "--timeout", "")
	ga("", filepath.Join(a.Dir, "missing")).mustSay(t, ExitQMPError, "GenericError", "missing")
	run(t, "", "ga", "run", "-s", a.Path).mustSayUsage(t, "needs a program")
	run(t, "", "ga", "run", "-s", a.Path, "--env", "NOEQUALS", "--", "true").mustSayUsage(t, "KEY=VALUE")
}

// An exit code no exit status can carry (a Windows guest's are 32 bits)
// must not become another status: 256 is not 0 (success), it is 1, the
// code said on stderr.
func TestGARunExitCodeOutOfRange(t *testing.T) {
	for _, tc := range []struct {
		status     map[string]any
		code       int
		stderrHint string
	}{
		{map[string]any{"exited": true, "exitcode": 256}, ExitQMPError, "exited with code 256"},
		{map[string]any{"exited": true, "exitcode": 512}, ExitQMPError, "exited with code 512"},
		{map[string]any{"exited": true, "exitcode": int64(1) << 40}, ExitQMPError, "exited with code 1099511627776"},
		{map[string]any{"exited": true, "exitcode": -1073741819}, ExitQMPError, "exited with code -1073741819"},
		{map[string]any{"exited": true, "signal": 200}, ExitQMPError, "ended by signal 200"},
		{map[string]any{"exited": true, "exitcode": 255}, 255, ""},
	} {
		f := gatest.StartFake(t, func(req gatest.Request) map[string]any {
			switch req.Execute {
			case "guest-exec":
				return map[string]any{"return": map[string]any{"pid": 7}}
			case "guest-exec-status":
				return map[string]any{"return": tc.status}
			}
			return map[string]any{"error": map[string]any{"class": "CommandNotFound", "desc": req.Execute}}
		})
		r := run(t, "", "ga", "run", "-s", f.Path, "--", "cmd", "/c", "exit")
		if tc.stderrHint == "" {
			r.expect(t, tc.code, "", "")
			continue
		}
		r.mustSay(t, tc.code, "cmd", tc.stderrHint, "qmpsh exits 1")
	}
}

// Standard input too big for one guest-exec request (its base64 is 64 MiB
// or more) is refused before anything is sent: qemu-ga would answer with
// an error without id, and ga run waited out its timeout for a reply.
func TestGARunStdinTooBig(t *testing.T) {
	f := gatest.StartFake(t, func(req gatest.Request) map[string]any {
		return map[string]any{"error": map[string]any{"class": "GenericError", "desc": "not expected"}}
	})
	for _, n := range []int{maxInput, maxInput + 1, 64 << 20} {
		r := run(t, strings.Repeat("x", n), "ga", "run", "-s", f.Path, "--", "/usr/bin/wc", "-c")
		r.mustSay(t, ExitQMPError, "standard input is too big", "48 MiB", "ga cp")
	}
	select {
	case req := <-f.Received:
		t.Errorf("the agent received %s", req.Execute)
	default:
	}
}

func TestGACopy(t *testing.T) {
	a := gatest.StartAgent(t)
	local := t.TempDir()
	data := make([]byte, 64<<20)
	rand.Read(data)
	src := filepath.Join(local, "src")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	guest := filepath.Join(a.Dir, "copy")
	run(t, "", "ga", "cp", "-s", a.Path, src, ":"+guest).expect(t, ExitOK, "", "")
	if got, err := os.ReadFile(guest); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("copied in: %d bytes, %v; differs from the %d bytes sent", len(got), err, len(data))
	}
	back := filepath.Join(local, "back")
	run(t, "", "ga", "cp", "-s", a.Path, ":"+guest, back).expect(t, ExitOK, "", "")
	if got, err := os.ReadFile(back); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("copied out: %d bytes, %v; differs from the %d bytes in the guest", len(got), err, len(data))
	}

	// A directory as the destination gets the source's name.
	run(t, "", "ga", "cp", "-s", a.Path, filepath.Join(local, "back"), ":"+a.Dir+"/").expect(t, ExitOK, "", "")
	if fi, err := os.Stat(filepath.Join(a.Dir, "back")); err != nil || fi.Size() != int64(len(data)) {
		t.Errorf("copied into a guest directory: %v, %v", fi, err)
	}
	sub := filepath.Join(local, "sub")
	os.Mkdir(sub, 0o700)
	run(t, "", "ga", "cp", "-s", a.Path, ":"+guest, sub).expect(t, ExitOK, "", "")
	if fi, err := os.Stat(filepath.Join(sub, "copy")); err != nil || fi.Size() != int64(len(data)) {
		t.Errorf("copied into a local directory: %v, %v", fi, err)
	}

	// stdin and stdout.
	small := filepath.Join(a.Dir, "small")
	run(t, "hello\n", "ga", "cp", "-s", a.Path, "-", ":"+small).expect(t, ExitOK, "", "")
	run(t, "", "ga", "cp", "-s", a.Path, ":"+small, "-").expect(t, ExitOK, "hello\n", "")

	// A failed copy out leaves no local file behind.
	missing := filepath.Join(local, "missing")
	run(t, "", "ga", "cp", "-s", a.Path, ":"+filepath.Join(a.Dir, "nope"), missing).mustSay(t, ExitQMPError, "No such file")
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("a failed copy left %s: %v", missing, err)
	}
	for _, args := range [][]string{{src, back}, {":/a", ":/b"}, {src, ":relative"}} {
		run(t, "", append([]string{"ga", "cp", "-s", a.Path}, args...)...).mustSayUsage(t, "ga cp")
	}
	// Every copy, the failed one too, closed its guest file.
	if n, err := a.OpenFiles(a.Dir); err != nil || n != 0 {
		t.Errorf("the agent has %d files open in the guest directory (%v); want 0", n, err)
	}
}

func TestGAConnectPiped(t *testing.T) {
	a := gatest.StartAgent(t)
	in := "guest-ping\n" +
		`{"execute": "guest-ping", "id": "mine"}` + "\n" +
		"no-such-command\n" +
		"guest-exec path=/bin/true\n" +
		"hmp info\n" // no built-in for an agent: a syntax error
	r := run(t, in, "ga", "connect", a.Path)
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if r.code != ExitQMPError || len(lines) != 3 || lines[0] != "{}" || lines[1] != `{"id":"mine","return":{}}` ||
		!strings.HasPrefix(lines[2], `{"pid":`) {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if len(r.stderrLines) != 2 || !strings.Contains(r.stderrLines[0], "CommandNotFound") {
		t.Errorf("stderr %q", r.stderr)
	}
	run(t, "guest-ping\n", "ga", "connect", a.Path).expect(t, ExitOK, "{}\n", "")
	run(t, "guest-ping\n", "ga", "connect", "-s", a.Path).expect(t, ExitOK, "{}\n", "")
	// -v traffic goes to stderr, stdout keeps the results alone.
	r = run(t, "guest-ping\n", "-v", "ga", "connect", a.Path)
	if r.code != ExitOK || r.stdout != "{}\n" || !strings.Contains(r.stderr, `--> {"execute":"guest-ping"`) {
		t.Errorf("-v: exit %d, stdout %q, stderr %q; want the result alone on stdout, the traffic on stderr", r.code, r.stdout, r.stderr)
	}
}

// An agent restarted mid-session: a shell on a pipe stops at the lost
// connection with status 3.
func TestGAConnectAgentRestarted(t *testing.T) {
	a := gatest.StartAgent(t)
	pr, pw := io.Pipe()
	defer pw.Close()
	out := &notifyBuffer{wrote: make(chan struct{}, 1)}
	var errOut qmptest.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Main([]string{"ga", "connect", a.Path}, &IOStreams{In: pr, Out: out, ErrOut: &errOut})
	}()
	// Once the first reply is out, the shell is connected and waiting.
	io.WriteString(pw, "guest-ping\n")
	for !strings.Contains(out.String(), "{}") {
		<-out.wrote
	}
	if err := a.Restart(); err != nil {
		t.Fatal(err)
	}
	io.WriteString(pw, "guest-ping\n")
	pw.Close()
	if code := <-done; code != ExitConnection {
		t.Errorf("exit %d, stdout %q, stderr %q; want %d", code, out.String(), errOut.String(), ExitConnection)
	}
}

// notifyBuffer is a qmptest.Buffer that says when it was written to.
type notifyBuffer struct {
	qmptest.Buffer
	wrote chan struct{}
}

func (b *notifyBuffer) Write(p []byte) (int, error) {
	n, err := b.Buffer.Write(p)
	select {
	case b.wrote <- struct{}{}:
	default:
	}
	return n, err
}

func TestCopyProgress(t *testing.T) {
	var out bytes.Buffer
	update, finish := copyProgress(&out, 64<<20)
	update(1 << 20) // below progressMin: nothing shown
	if out.Len() != 0 {
		t.Fatalf("a small copy showed %q", out.String())
	}
	update(32 << 20)
	update(64 << 20)
	finish()
	s := out.String()
	if !strings.Contains(s, "100%") || !strings.Contains(s, "64.00 MiB/64.00 MiB") || !strings.HasSuffix(s, "\n") {
		t.Errorf("bar %q", s)
	}
	var none bytes.Buffer
	update, finish = copyProgress(&none, 1<<20)
	update(1 << 20)
	finish()
	if none.Len() != 0 {
		t.Errorf("a small copy showed %q", none.String())
	}
}

func TestGACommandsFillOptions(t *testing.T) {
	g := &GlobalOptions{Factory: testFactory(strings.NewReader(""), io.Discard, io.Discard, nil, &fakeSignals{})}
	var run *GARunOptions
	c := newGARunCmd(g, func(_ context.Context, o *GARunOptions) error { run = o; return nil })
	c.SetArgs([]string{"-s", "vsock:3:1234", "--env", "A=1", "-n", "--", "prog", "-s", "x"})
	if err := c.Execute(); err != nil {
		t.Fatal(err)
	}
	if run == nil || run.Addr != "vsock:3:1234" || strings.Join(run.Env, ",") != "A=1" || !run.NoStdin ||
		strings.Join(run.Argv, " ") != "prog -s x" {
		t.Errorf("ga run options %+v", run)
	}
	var cp *GACpOptions
	c = newGACpCmd(g, func(_ context.Context, o *GACpOptions) error { cp = o; return nil })
	c.SetArgs([]string{"-s", "q.sock", "a", ":/b"})
	if err := c.Execute(); err != nil || cp == nil || cp.Addr != "q.sock" || cp.Src != "a" || cp.Dst != ":/b" {
		t.Errorf("ga cp options %+v, %v", cp, err)
	}
	var ex *GAExecOptions
	c = newGAExecCmd(g, func(_ context.Context, o *GAExecOptions) error { ex = o; return nil })
	c.SetArgs([]string{"-s", "q.sock", "guest-exec", "path=/bin/true"})
	if err := c.Execute(); err != nil || ex == nil || ex.Addr != "q.sock" || strings.Join(ex.Args, " ") != "guest-exec path=/bin/true" {
		t.Errorf("ga exec options %+v, %v", ex, err)
	}
	var sh *GAConnectOptions
	c = newGAConnectCmd(g, func(_ context.Context, o *GAConnectOptions) error { sh = o; return nil })
	c.SetArgs([]string{"q.sock"})
	if err := c.Execute(); err != nil || sh == nil || sh.Addr != "q.sock" {
		t.Errorf("ga connect options %+v, %v", sh, err)
	}
	// -s, as on the other ga commands and as its help says.
	sh = nil
	c = newGAConnectCmd(g, func(_ context.Context, o *GAConnectOptions) error { sh = o; return nil })
	c.SetArgs([]string{"-s", "q.sock"})
	if err := c.Execute(); err != nil || sh == nil || sh.Addr != "q.sock" {
		t.Errorf("ga connect -s: options %+v, %v", sh, err)
	}
	c = newGAConnectCmd(g, func(_ context.Context, o *GAConnectOptions) error { return nil })
	c.SetArgs([]string{"-s", "q.sock", "other.sock"})
	if err := c.Execute(); exitCode(err) != ExitUsage {
		t.Errorf("ga connect -s A B: %v; want a usage error", err)
	}
}

// In the shell, a command without a reply prints nothing, not an empty
// line: piped stdout is JSON lines.
func TestGAConnectNoReplyCommand(t *testing.T) {
	f := gatest.StartFake(t, func(req gatest.Request) map[string]any {
		switch req.Execute {
		case "guest-shutdown":
			return nil
		case "guest-info":
			return map[string]any{"return": map[string]any{"version": "7.2", "supported_commands": []any{
				map[string]any{"name": "guest-ping", "enabled": true, "success-response": true},
				map[string]any{"name": "guest-shutdown", "enabled": true, "success-response": false},
			}}}
		}
		return map[string]any{"return": map[string]any{}}
	})
	run(t, "guest-shutdown\nguest-ping\n", "ga", "connect", f.Path).expect(t, ExitOK, "{}\n", "")
}

// An agent that stops answering mid-session: on a pipe, the shell goes on
// with the next line, and ends 4, a timeout, however many others failed.
func TestGAConnectSilentMidSession(t *testing.T) {
	f := gatest.StartFake(t, func(req gatest.Request) map[string]any {
		switch req.Execute {
		case "guest-get-time":
			return nil // the agent hangs in this one
		case "guest-ping", "guest-info":
			return map[string]any{"return": map[string]any{}}
		}
		return map[string]any{"error": map[string]any{"class": "CommandNotFound", "desc": "no " + req.Execute}}
	})
	// The bound is generous: the agent must answer every other call
	// within it, under -race on a busy machine too.
	r := run(t, "guest-ping\nno-such-command\nguest-get-time\nguest-ping\n", "ga", "connect", "--timeout", "1s", f.Path)
	if r.code != ExitTimeout || r.stdout != "{}\n{}\n" || len(r.stderrLines) != 2 ||
		!strings.Contains(r.stderrLines[0], "CommandNotFound") ||
		!strings.Contains(r.stderrLines[1], "the guest agent did not answer within 1s to guest-get-time") {
		t.Errorf("exit %d, stdout %q, stderr %q; want %d, both pings' results, one line for each failure",
			r.code, r.stdout, r.stderr, ExitTimeout)
	}
	// Without the silent command, the failure is the error reply's.
	run(t, "no-such-command\nguest-ping\n", "ga", "connect", "--timeout", "1s", f.Path).
		expect(t, ExitQMPError, "{}\n", "CommandNotFound: no no-such-command\n")
}

// An agent whose channel QEMU serves over TLS (-chardev
// socket,...,tls-creds=...): ga dials tls:HOST:PORT with the TLS flags, as
// every command that dials does. A guest is needed for QEMU to carry the
// channel, so here a relay in its place terminates TLS, verifying the
// client's certificate as QEMU's verify-peer=on does, and passes the bytes
// to a real qemu-ga.
func TestGATLS(t *testing.T) {
	a := gatest.StartAgent(t)
	dir := qmptest.NewTLSDir(t)
	addr := tlsRelay(t, dir, a.Path)
	run(t, "", "ga", "exec", "--tls-dir", dir, "-s", addr, "guest-ping").expect(t, ExitOK, "{}\n", "")
	runEnv(t, map[string]string{"QMPSH_TLS_DIR": dir, "QGA_SOCKET": addr}, "ga", "run", "--", "echo", "hi").
		expect(t, ExitOK, "hi\n", "")
	run(t, "guest-ping\n", "ga", "connect", "--tls-dir", dir, addr).expect(t, ExitOK, "{}\n", "")
	run(t, "", "ga", "exec", "--tls-dir", qmptest.NewTLSDir(t), "-s", addr, "guest-ping").
		mustSay(t, ExitConnection, "cannot connect to "+addr, "unknown authority")
	// Without a client certificate: the relay, as QEMU's verify-peer=on,
	// refuses it, which TLS 1.3 shows only as a hang-up after the
	// handshake.
	run(t, "", "ga", "exec", "--tls-ca", filepath.Join(dir, "ca-cert.pem"), "-s", addr, "guest-ping").
		mustSay(t, ExitConnection, addr, "refused our TLS certificate")
	// A TLS flag is checked against the agent's address, $QGA_SOCKET
	// for want of -s, not against $QMP_SOCKET.
	runEnv(t, map[string]string{"QGA_SOCKET": addr, "QMP_SOCKET": "/nonexistent/qmp.sock"}, "ga", "exec", "--tls-dir", dir, "guest-ping").
		expect(t, ExitOK, "{}\n", "")
	runEnv(t, map[string]string{"QGA_SOCKET": a.Path}, "ga", "exec", "--tls-dir", dir, "guest-ping").
		mustSayUsage(t, "--tls-dir is for tls:HOST:PORT addresses, and "+a.Path+" is not one")
}

// tlsRelay listens on a loopback port with dir's server certificate,
// requiring a client certificate signed by dir's CA, and relays each
// connection to the UNIX socket target, until the test ends. It returns
// the address as tls:127.0.0.1:PORT.
func tlsRelay(t *testing.T, dir, target string) string {
	t.Helper()
	cfg, err := qmptest.ServerTLSConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	client, err := qmptest.ClientTLSConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ClientCAs, cfg.ClientAuth = client.RootCAs, tls.RequireAndVerifyClientCert
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	track := func(c net.Conn, on bool) {
		mu.Lock()
		defer mu.Unlock()
		if on {
			open[c] = true
		} else {
			delete(open, c)
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				up, err := net.Dial("unix", target)
				if err != nil {
					return
				}
				defer up.Close()
				track(c, true)
				defer track(c, false)
				done := make(chan struct{})
				go func() {
					io.Copy(up, c)
					up.(*net.UnixConn).CloseWrite()
					close(done)
				}()
				io.Copy(c, up)
				c.Close()
				<-done
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "tls:" + ln.Addr().String()
}

// A QMP monitor's socket given for the agent's (they sit side by side in
// a VM's directory): said at once, from QEMU's greeting, not after
// --timeout as an agent that does not answer.
func TestGAOnMonitor(t *testing.T) {
	sock := qmptest.StartQEMU(t)
	for _, args := range [][]string{
		{"ga", "exec", "-s", sock, "guest-ping"},
		{"ga", "connect", sock},
	} {
		run(t, "guest-ping\n", append([]string{"--timeout", "60s"}, args...)...).
			mustSay(t, ExitConnection, sock+": this is a QEMU monitor", "qmpsh exec or connect")
	}
	// Over TLS, the same, without the hint for a refused certificate.
	dir := qmptest.NewTLSDir(t)
	addr := qmptest.StartQEMUTLS(t, dir)
	r := run(t, "", "ga", "exec", "--tls-dir", dir, "-s", addr, "guest-ping")
	r.mustSay(t, ExitConnection, addr+": this is a QEMU monitor", "qmpsh exec or connect")
	if strings.Contains(r.stderr, "certificate") {
		t.Errorf("stderr %q speaks of a certificate", r.stderr)
	}
}

// An agent's socket with clients queued on it gets advice for an agent,
// not the monitor's (its own -qmp socket, the proxy: QMP only).
func TestGABusyHint(t *testing.T) {
	err := gaError("/run/qga.sock", &protocol.ConnectError{Message: "failed to establish connection",
		Err: &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.EAGAIN)}})
	want := "cannot connect to /run/qga.sock: clients are queued on it already; " + gaBusyHint
	if exitCode(err) != ExitConnection || err.Error() != want {
		t.Fatalf("gaError = %v (exit %d); want %q, exit %d", err, exitCode(err), want, ExitConnection)
	}
}
