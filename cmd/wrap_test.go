//go:build linux

package cmd

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// wrapQEMU is the QEMU command line the wrap tests run.
var wrapQEMU = []string{"qemu-system-x86_64", "-M", "none", "-nodefaults", "-display", "none"}

// wrapDirs points qmpsh's socket directory and QEMU's log at fresh
// directories, returned so that a test can check what is left in them.
func wrapDirs(t *testing.T) (runtime, tmp string) {
	t.Helper()
	// Short: the socket's path must fit in sun_path.
	runtime = ptyShortTempDir(t)
	tmp = t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", runtime)
	t.Setenv("TMPDIR", tmp)
	return runtime, tmp
}

var wrapStarted = regexp.MustCompile(`^qmpsh: started QEMU \(pid (\d+)\); its output goes to (.+)$`)

// wrapPid returns QEMU's pid and log file from qmpsh's first line on
// stderr.
func wrapPid(t *testing.T, line string) (int, string) {
	t.Helper()
	m := wrapStarted.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("first line on stderr %q, want %q", line, wrapStarted)
	}
	pid, _ := strconv.Atoi(m[1])
	return pid, m[2]
}

// requireGone fails the test if process pid exists: wrap reaps QEMU
// before it returns, so even a zombie would be a failure.
func requireGone(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("QEMU (pid %d) is still there after qmpsh returned (kill 0: %v)", pid, err)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// requireEmpty fails the test unless dir is empty.
func requireEmpty(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left behind in %s: %s", dir, e.Name())
	}
}

// wrapSession is qmpsh wrap (or accept) running in this process, its stdin a pipe
// kept open until the test closes it, its output read line by line.
type wrapSession struct {
	stdin       *io.PipeWriter
	out, errOut *lineReader
	done        chan int
}

// lineReader collects what is written to a pipe, and hands each line
// to whoever waits for it.
type lineReader struct {
	w     *io.PipeWriter
	all   qmptest.Buffer
	lines chan string   // every line, buffered generously
	ended chan struct{} // closed once the writer is closed and all is read
}

func newLineReader() *lineReader {
	r, w := io.Pipe()
	l := &lineReader{w: w, lines: make(chan string, 1000), ended: make(chan struct{})}
	go func() {
		defer close(l.ended)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			l.all.Write([]byte(sc.Text() + "\n"))
			select {
			case l.lines <- sc.Text():
			default:
			}
		}
	}()
	return l
}

// next waits for the next line.
func (l *lineReader) next(t *testing.T) string {
	t.Helper()
	select {
	case line := <-l.lines:
		return line
	case <-l.ended:
		t.Fatalf("output ended; it was %q", l.all.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("no line after 30s; output so far %q", l.all.String())
	}
	return ""
}

func (l *lineReader) String() string { return l.all.String() }

func startWrap(t *testing.T, args ...string) *wrapSession {
	t.Helper()
	stdinR, stdinW := io.Pipe()
	s := &wrapSession{stdin: stdinW, out: newLineReader(), errOut: newLineReader(), done: make(chan int, 1)}
	go func() {
		code := Main(args, &IOStreams{In: stdinR, Out: s.out.w, ErrOut: s.errOut.w})
		s.out.w.Close()
		s.errOut.w.Close()
		<-s.out.ended
		<-s.errOut.ended
		s.done <- code
	}()
	// The shell's read of stdin ends only when stdin does.
	t.Cleanup(func() {
		stdinW.Close()
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			t.Errorf("qmpsh wrap did not return after its stdin was closed")
		}
	})
	return s
}

// requireRunning runs query-status in the session, which answers once
// QEMU has connected, and requires QEMU to be running.
func (s *wrapSession) requireRunning(t *testing.T) {
	t.Helper()
	io.WriteString(s.stdin, "query-status\n")
	if line := s.out.next(t); !strings.Contains(line, `"running"`) {
		t.Fatalf("stdout %q, stderr %q", line, s.errOut.String())
	}
}

// end closes the session's stdin and requires qmpsh to end with status 0.
func (s *wrapSession) end(t *testing.T) {
	t.Helper()
	s.stdin.Close()
	if code := s.wait(t); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, s.errOut.String())
	}
}

// wait waits for qmpsh to return, with stdin still open, and for all its
// output to be read.
func (s *wrapSession) wait(t *testing.T) int {
	t.Helper()
	select {
	case code := <-s.done:
		s.done <- code // for the cleanup
		return code
	case <-time.After(30 * time.Second):
		t.Fatalf("qmpsh wrap did not return; stdout %q, stderr %q", s.out.String(), s.errOut.String())
		return -1
	}
}

func TestWrapShellEndsQEMU(t *testing.T) {
	qmptest.RequireQEMU(t, "qemu-system-x86_64")
	runtimeDir, tmp := wrapDirs(t)

	t.Run("EndOfInput", func(t *testing.T) {
		r := run(t, "help\nquery-status\n", append([]string{"wrap", "--"}, wrapQEMU...)...)
		if r.code != 0 || !strings.Contains(r.stdout, `"status":"running"`) ||
			!strings.Contains(r.stdout, `{"name":"quit","summary":"leave the shell and quit QEMU"}`) {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		if len(r.stderrLines) != 1 {
			t.Errorf("stderr %q, want one line", r.stderr)
		}
		pid, log := wrapPid(t, r.stderrLines[0])
		requireGone(t, pid)
		// QEMU said nothing: the log it was given is gone too.
		if filepath.Dir(log) != tmp {
			t.Errorf("log %s is not in $TMPDIR", log)
		}
		requireEmpty(t, tmp)
	})
	t.Run("QuitBuiltin", func(t *testing.T) {
		// stdin stays open: the shell's quit is what ends it.
		logFile := filepath.Join(t.TempDir(), "qemu.log")
		s := startWrap(t, append([]string{"wrap", "--qemu-log", logFile, "--hmp", "--"}, wrapQEMU...)...)
		io.WriteString(s.stdin, "info status\nquit\n")
		if code := s.wait(t); code != 0 || s.out.String() != `"VM status: running\n"`+"\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, s.out.String(), s.errOut.String())
		}
		pid, log := wrapPid(t, strings.TrimSuffix(s.errOut.String(), "\n"))
		requireGone(t, pid)
		if log != logFile {
			t.Errorf("log %s, want %s", log, logFile)
		}
		// Given by name, the log stays, even empty.
		if _, err := os.Stat(logFile); err != nil {
			t.Error(err)
		}
	})
	requireEmpty(t, runtimeDir)
}

func TestWrapQEMUEndsShell(t *testing.T) {
	qmptest.RequireQEMU(t, "qemu-system-x86_64")
	runtimeDir, _ := wrapDirs(t)

	t.Run("Quit", func(t *testing.T) {
		// stdin stays open: QEMU's exit is what ends the shell.
		s := startWrap(t, append([]string{"wrap", "--"}, wrapQEMU...)...)
		io.WriteString(s.stdin, `{"execute": "quit"}`+"\n")
		code := s.wait(t)
		if code != 0 || !strings.Contains(s.out.String(), `"reason":"host-qmp-quit"`) {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, s.out.String(), s.errOut.String())
		}
		lines := strings.Split(strings.TrimSuffix(s.errOut.String(), "\n"), "\n")
		if len(lines) != 1 {
			t.Errorf("stderr %q, want only the line that names the log", s.errOut.String())
		}
		pid, _ := wrapPid(t, lines[0])
		requireGone(t, pid)
	})
	t.Run("QuitThenMore", func(t *testing.T) {
		// The lines after a quit are not run, whenever QEMU's exit is
		// noticed: QEMU exits 0, the shell's commands all succeeded.
		for _, quit := range []string{`{"execute": "quit"}`, `{"execute": "quit"}`, "hmp quit", "hmp q"} {
			s := startWrap(t, append([]string{"wrap", "--"}, wrapQEMU...)...)
			io.WriteString(s.stdin, "query-status\n"+quit+"\nquery-status\nquery-status\n")
			code := s.wait(t)
			if code != 0 || strings.Count(s.out.String(), `"status":"running"`) != 1 {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, s.out.String(), s.errOut.String())
			}
			if lines := strings.Split(strings.TrimSuffix(s.errOut.String(), "\n"), "\n"); len(lines) != 1 {
				t.Fatalf("stderr %q, want only the line that names the log", s.errOut.String())
			}
		}
	})
	t.Run("CommandFailedThenQuit", func(t *testing.T) {
		// QEMU exits 0: the shell's own status counts.
		s := startWrap(t, append([]string{"wrap", "--"}, wrapQEMU...)...)
		io.WriteString(s.stdin, "foo\n{\"execute\": \"quit\"}\n")
		if code := s.wait(t); code != ExitQMPError {
			t.Fatalf("exit %d, want 1; stderr %q", code, s.errOut.String())
		}
	})
	t.Run("Killed", func(t *testing.T) {
		s := startWrap(t, append([]string{"wrap", "--"}, wrapQEMU...)...)
		pid, _ := wrapPid(t, s.errOut.next(t))
		// Once the shell has answered, QEMU has connected.
		s.requireRunning(t)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if code := s.wait(t); code != 128+9 {
			t.Fatalf("exit %d, want 137; stderr %q", code, s.errOut.String())
		}
		if !strings.HasSuffix(s.errOut.String(), "\nqmpsh: QEMU was killed by signal 9 (killed)\n") {
			t.Errorf("stderr %q", s.errOut.String())
		}
	})
	requireEmpty(t, runtimeDir)
}

func TestWrapUsage(t *testing.T) {
	for _, args := range [][]string{
		{"wrap"},
		{"wrap", "--"},
		{"wrap", "--", "qemu-system-x86_64", "-daemonize"},
	} {
		r := run(t, "", args...)
		if r.code != ExitUsage || r.stdout != "" || !strings.HasPrefix(r.stderr, "qmpsh: ") {
			t.Errorf("%q: %+v", args, r)
		}
	}
}

func TestWrapStartFailure(t *testing.T) {
	runtimeDir, tmp := wrapDirs(t)

	t.Run("QEMUExits", func(t *testing.T) {
		qmptest.RequireQEMU(t, "qemu-system-x86_64")
		r := run(t, "", "wrap", "--", "qemu-system-x86_64", "-M", "nonexistent", "-nodefaults", "-display", "none")
		if r.code != ExitConnection || len(r.stderrLines) != 2 {
			t.Fatalf("exit %d, stderr %q; want exit 3 and two lines", r.code, r.stderr)
		}
		pid, log := wrapPid(t, r.stderrLines[0])
		requireGone(t, pid)
		want := "qmpsh: QEMU exited with status 1 before the QMP session started: qemu-system-x86_64: unsupported machine type; its output is in " + log
		if r.stderrLines[1] != want {
			t.Errorf("stderr %q\nwant %q", r.stderrLines[1], want)
		}
		// QEMU's output stays for the user to read.
		if b, err := os.ReadFile(log); err != nil || !strings.Contains(string(b), "unsupported machine type") {
			t.Errorf("log %s: %q, %v", log, b, err)
		}
		os.Remove(log)
	})
	t.Run("QEMUExitsAfterConnecting", func(t *testing.T) {
		// QEMU dials the socket as it creates the monitor, and opens the
		// drive only later.
		qmptest.RequireQEMU(t, "qemu-system-x86_64")
		img := filepath.Join(t.TempDir(), "none.img")
		r := run(t, "", append(append([]string{"wrap", "--"}, wrapQEMU...), "-drive", "file="+img)...)
		if r.code != ExitConnection || len(r.stderrLines) != 2 {
			t.Fatalf("exit %d, stderr %q; want exit 3 and two lines", r.code, r.stderr)
		}
		pid, log := wrapPid(t, r.stderrLines[0])
		requireGone(t, pid)
		want := "qmpsh: QEMU exited with status 1 before the QMP session started: qemu-system-x86_64: -drive file=" +
			img + ": Could not open '" + img + "': No such file or directory; its output is in " + log
		if r.stderrLines[1] != want {
			t.Errorf("stderr %q\nwant %q", r.stderrLines[1], want)
		}
		os.Remove(log)
	})
	t.Run("NoSuchProgram", func(t *testing.T) {
		r := run(t, "", "wrap", "--", filepath.Join(tmp, "no-qemu"))
		r.expect(t, ExitConnection, "", "qmpsh: starting QEMU: fork/exec "+filepath.Join(tmp, "no-qemu")+": no such file or directory\n")
	})
	t.Run("NeverConnects", func(t *testing.T) {
		// The "QEMU" ignores -qmp unix:PATH (sh's $0 and $1) and sleeps.
		r := run(t, "", "wrap", "--timeout", "200ms", "--", "/bin/sh", "-c", "exec sleep 60")
		if r.code != ExitTimeout || len(r.stderrLines) != 2 ||
			r.stderrLines[1] != "qmpsh: QEMU did not connect within 200ms; killed it" {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		pid, _ := wrapPid(t, r.stderrLines[0])
		requireGone(t, pid)
	})
	t.Run("Interrupted", func(t *testing.T) {
		// Ctrl-C or SIGTERM while QEMU has not connected: killed,
		// said in qmpsh's words, 128+N as accept. (At a terminal, see
		// TestWrapPty.)
		for _, c := range []struct {
			sig  os.Signal
			code int
			name string
		}{
			{os.Interrupt, 130, "interrupt"},
			{syscall.SIGTERM, 143, "terminated"},
		} {
			sigs := &fakeSignals{}
			errR, errW := io.Pipe()
			f := testFactory(strings.NewReader(""), io.Discard, errW, map[string]string{"XDG_RUNTIME_DIR": runtimeDir}, sigs)
			done := make(chan int, 1)
			go func() {
				done <- Execute(f, []string{"wrap", "--", "/bin/sh", "-c", "exec sleep 60"})
				errW.Close()
			}()
			lines := bufio.NewScanner(errR)
			var stderr []string
			for lines.Scan() {
				stderr = append(stderr, lines.Text())
				if len(stderr) == 1 {
					// QEMU started: stop the wait for it.
					if n := sigs.raise(c.sig); n == 0 {
						t.Fatalf("%v: nobody listens for it", c.sig)
					}
				}
			}
			code := <-done
			want := "qmpsh: interrupted while waiting for QEMU to connect (" + c.name + " signal received); killed it"
			if code != c.code || len(stderr) != 2 || stderr[1] != want {
				t.Fatalf("%v: exit %d, stderr %q; want %d and %q", c.sig, code, stderr, c.code, want)
			}
			pid, _ := wrapPid(t, stderr[0])
			requireGone(t, pid)
		}
	})
	requireEmpty(t, tmp)
	requireEmpty(t, runtimeDir)
}

// TestWrapPty runs wrap on a terminal: QEMU's quit ends the shell at its
// prompt, and Ctrl-D quits QEMU.
func TestWrapPty(t *testing.T) {
	bin := ptyBuildQmpsh(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // for QEMU's log
	qemu := append([]string{"wrap", "--color", "never", "--"}, wrapQEMU...)

	t.Run("QEMUQuits", func(t *testing.T) {
		s := ptyStart(t, bin, qemu...)
		s.expect(`qmpsh: started QEMU \(pid \d+\); its output goes to \S+\r\n`)
		s.expect(`Connected to QEMU \d+\.\d+\.\d+[^\r\n]* \(pid \d+\)\. Type help for help, Ctrl-D to leave and quit QEMU\.`)
		s.expectPrompt(``, "(QEMU) ", "")
		s.send(`{"execute": "quit"}` + "\r")
		s.expect(`qmpsh: QEMU exited\.\r\n`)
		s.expectExit(0)
	})
	t.Run("CtrlD", func(t *testing.T) {
		s := ptyStart(t, bin, qemu...)
		s.expect(`qmpsh: started QEMU \(pid \d+\)`)
		m := regexp.MustCompile(`started QEMU \(pid (\d+)\)`).FindStringSubmatch(s.screen())
		pid, _ := strconv.Atoi(m[1])
		// In a process group of its own, QEMU gets no Ctrl-C from the
		// terminal.
		if pgid, err := syscall.Getpgid(pid); err != nil || pgid != pid {
			t.Errorf("QEMU's process group %d (%v), want its own, %d", pgid, err, pid)
		}
		s.expectPrompt(``, "(QEMU) ", "")
		s.send("\x04")
		s.expectExit(0)
		requireGone(t, pid)
	})
	t.Run("CtrlCBeforeConnected", func(t *testing.T) {
		// The "QEMU" never connects; Ctrl-C, which the shell keeps for
		// itself once it runs, stops the wait.
		s := ptyStart(t, bin, "wrap", "--color", "never", "--", "/bin/sh", "-c", "exec sleep 60")
		s.expect(`qmpsh: started QEMU \(pid \d+\)`)
		m := regexp.MustCompile(`started QEMU \(pid (\d+)\)`).FindStringSubmatch(s.screen())
		pid, _ := strconv.Atoi(m[1])
		s.send("\x03")
		s.expect(`qmpsh: interrupted while waiting for QEMU to connect \(interrupt signal received\); killed it`)
		s.expectExit(130)
		requireGone(t, pid)
	})
	requireEmpty(t, tmp)
}

// Once QEMU has connected, wrap's private socket directory is gone, not
// only at the end: qmpsh killed during the session (SIGKILL, a second
// SIGTERM, SIGPIPE from a closed stdout) leaves nothing in
// $XDG_RUNTIME_DIR.
func TestWrapRemovesSocketDirOnceConnected(t *testing.T) {
	qmptest.RequireQEMU(t, "qemu-system-x86_64")
	runtimeDir, _ := wrapDirs(t)
	s := startWrap(t, append([]string{"wrap", "--"}, wrapQEMU...)...)
	s.requireRunning(t)
	requireEmpty(t, runtimeDir) // while the session runs
	s.end(t)
}

// The same for accept without ADDR: its private directory goes as soon
// as QEMU has connected.
func TestAcceptRemovesPrivateDirOnceConnected(t *testing.T) {
	qmptest.RequireQEMU(t, "qemu-system-x86_64")
	runtimeDir, _ := wrapDirs(t)
	s := startWrap(t, "accept")
	_, sock, ok := strings.Cut(s.errOut.next(t), "start it with: -qmp unix:")
	if !ok {
		t.Fatalf("stderr %q does not say where to connect", s.errOut.String())
	}
	qmptest.StartQEMUClient(t, sock)
	s.requireRunning(t)
	requireEmpty(t, runtimeDir) // while the session runs
	s.end(t)
}

// A second accept on the same path is refused (exit 2), and the check
// that tells it something listens there (a connection, at once closed)
// does not cost the first accept its QEMU: the check says what it is,
// and the first accept says so and waits on.
func TestAcceptSurvivesSecondAccept(t *testing.T) {
	qmptest.RequireQEMU(t, "qemu-system-x86_64")
	sock := filepath.Join(ptyShortTempDir(t), "qmp.sock")
	s := startAccept(t, sock)

	run(t, "", "accept", "--timeout", "10s", sock).
		mustSay(t, ExitUsage, "cannot listen on "+sock+": something is listening on "+sock)
	// Said once the socket is live again.
	if line, want := s.errOut.next(t), "qmpsh: "+sock+": another qmpsh found this socket in use; still waiting for QEMU"; line != want {
		t.Fatalf("stderr %q\nwant   %q", line, want)
	}

	qmptest.StartQEMUClient(t, sock)
	s.requireRunning(t)
	s.end(t)
}

// A QEMU that connects and fails to start (a drive it cannot open) hangs
// up without its greeting: accept says so and exits 3, rather than wait
// for another.
func TestAcceptQEMUFailsToStart(t *testing.T) {
	qmptest.RequireQEMU(t, "qemu-system-x86_64")
	sock := filepath.Join(ptyShortTempDir(t), "qmp.sock")
	s := startAccept(t, sock)
	qmptest.StartQEMUClient(t, sock, "-drive", "file=/nonexistent/qmpsh-test,if=none")
	if code := s.wait(t); code != ExitConnection {
		t.Fatalf("exit %d, want %d; stderr %q", code, ExitConnection, s.errOut.String())
	}
	if want := "server closed the connection without greeting"; !strings.Contains(s.errOut.String(), want) {
		t.Errorf("stderr %q does not say %q", s.errOut.String(), want)
	}
}

// startAccept starts qmpsh accept on sock and waits till it says where
// QEMU is to connect.
func startAccept(t *testing.T, sock string) *wrapSession {
	t.Helper()
	s := startWrap(t, "accept", sock)
	if line := s.errOut.next(t); line != "qmpsh: waiting for QEMU; start it with: -qmp unix:"+sock {
		t.Fatalf("stderr %q", line)
	}
	return s
}

// qmpsh wrap whose standard output closes under it (| head) ends the
// session as Ctrl-D does: QEMU is asked to quit, its log (empty) goes,
// and qmpsh exits 141, quietly. Go's default, dying of SIGPIPE, took QEMU
// down with SIGTERM (its parent-death signal) and left QEMU's log behind.
func TestWrapStdoutClosed(t *testing.T) {
	bin := ptyBuildQmpsh(t)
	runtimeDir, tmp := wrapDirs(t)
	cmd := exec.Command(bin, append([]string{"wrap", "--"}, wrapQEMU...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errOut qmptest.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		select {
		case <-exited:
		case <-time.After(ptyTimeout):
			cmd.Process.Kill()
		}
	}()
	// Commands keep coming, each printing a line, until qmpsh is gone
	// and the write fails: stdin stays open, so only the closed stdout
	// can end the session.
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		for {
			if _, err := io.WriteString(stdin, "query-status\n"); err != nil {
				return
			}
		}
	}()
	if _, err := bufio.NewReader(stdout).ReadString('\n'); err != nil {
		t.Fatalf("no first result: %v; stderr %q", err, errOut.String())
	}
	stdout.Close() // as head -1 exits
	cmd.Wait()
	close(exited)
	stdin.Close()
	<-fed
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() || ws.ExitStatus() != ExitBrokenPipe {
		t.Errorf("qmpsh ended %v, want exit status %d", cmd.ProcessState, ExitBrokenPipe)
	}
	lines := strings.Split(strings.TrimSuffix(errOut.String(), "\n"), "\n")
	pid, _ := wrapPid(t, lines[0])
	if len(lines) != 1 {
		t.Errorf("stderr %q, want only the line saying QEMU started", errOut.String())
	}
	requireGone(t, pid)
	requireEmpty(t, tmp) // QEMU quit when asked: nothing in its log
	requireEmpty(t, runtimeDir)
}
