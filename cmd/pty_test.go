//go:build linux

package cmd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/creack/pty"

	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// ptyTimeout bounds every wait for output in these tests. The shell
// answers within milliseconds; the bound only matters when something is
// broken, and must be generous for a loaded CI machine running -race.
const ptyTimeout = 30 * time.Second

// TestPty runs the qmpsh binary in a real pseudo-terminal, as a person
// would: readline in raw mode, the prompt, events arriving while a line
// is half-typed, Tab completion, Ctrl-C, Ctrl-D and the history file.
func TestPty(t *testing.T) {
	bin := ptyBuildQmpsh(t)

	t.Run("StdoutNotATerminal", func(t *testing.T) {
		// Typed at a terminal, results to a file: the file gets the
		// results as JSON lines only; prompt, echo and banner stay on
		// the terminal (stderr).
		sock := qmptest.StartQEMU(t)
		out, err := os.Create(filepath.Join(t.TempDir(), "out.json"))
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		s := ptyStartStdout(t, bin, out, "connect", "--color", "never", sock)
		s.expect(`Connected to QEMU `)
		s.expectPrompt(``, "(QEMU) ", "")
		s.send("query-status\r")
		s.expectPrompt(`query-status\r\n`, "(QEMU) ", "")
		s.send("\x04")
		s.expectExit(0)
		data, err := os.ReadFile(out.Name())
		if err != nil || string(data) != `{"status":"running","singlestep":false,"running":true}`+"\n" {
			t.Errorf("stdout got %q, %v; want the status alone, as one JSON line", data, err)
		}
	})
	t.Run("StdoutNotATerminalTrafficRedraws", func(t *testing.T) {
		// Stdout to a file, -v traffic on the terminal: written
		// through the editor, with the half-typed line drawn again
		// beneath it.
		sock, second := startQEMUTwoMonitors(t)
		out, err := os.Create(filepath.Join(t.TempDir(), "out.json"))
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		s := ptyStartStdout(t, bin, out, "-v", "connect", "--color", "never", sock)
		s.expect(`Connected to QEMU `)
		s.expectPrompt(``, "(QEMU) ", "")
		s.send("query-sta")
		s.expectPrompt(``, "(QEMU) ", "query-sta")
		ptyStopVM(t, second)
		s.expectPrompt(`<-- \{[^\r\n]*"event": "STOP"[^\r\n]*\r\n`, "(QEMU) ", "query-sta")
		s.send("\x15\x04") // Ctrl-U, Ctrl-D
		s.expectExit(0)
		if data, _ := os.ReadFile(out.Name()); !strings.Contains(string(data), `"event":"STOP"`) || strings.Contains(string(data), "<--") {
			t.Errorf("stdout got %q; want the event as JSON, no traffic", data)
		}
	})
	t.Run("EventRedrawsHalfTypedLine", func(t *testing.T) {
		// Events are broadcast to every monitor: a STOP caused through the
		// second one is printed by the shell connected to the first.
		sock, second := startQEMUTwoMonitors(t)
		s := ptyStart(t, bin, "connect", "--color", "never", sock)

		s.expect(`Connected to QEMU \d+\.\d+\.\d+[^\r\n]* at ` + regexp.QuoteMeta(sock) + `\. `)
		s.expectPrompt(``, "(QEMU) ", "")
		s.send("query-sta")
		s.expectPrompt(``, "(QEMU) ", "query-sta") // echoed: readline holds it

		ptyStopVM(t, second)
		// The event, on a line of its own, then the prompt and the
		// half-typed text drawn again beneath it, and nothing after.
		s.expectPrompt(`event STOP at [^\r\n]+\r\n`, "(QEMU) ", "query-sta")

		// The rest of the line completes the one typed before the event.
		s.send("tus\r")
		s.expect(`\(QEMU\) query-status\r\n` + ptyControls + `\{ "status": "paused", [^\r\n]*\}\r\n`)
		s.expectPrompt(``, "(QEMU) ", "")
		s.send("\x04") // Ctrl-D on an empty line
		s.expectExit(0)

		hist := filepath.Join(s.stateHome, "qmpsh", "history")
		data, err := os.ReadFile(hist)
		if err != nil {
			t.Fatalf("history: %v", err)
		}
		if !slices.Contains(strings.Split(string(data), "\n"), "query-status") {
			t.Errorf("history %s = %q, want a line query-status", hist, data)
		}
		// What was typed at a VM stays private.
		if fi, err := os.Stat(filepath.Dir(hist)); err != nil {
			t.Error(err)
		} else if fi.Mode().Perm() != 0o700 {
			t.Errorf("history directory mode %v, want 0700", fi.Mode().Perm())
		}
	})

	t.Run("TabCompletesCommandName", func(t *testing.T) {
		sock := qmptest.StartQEMU(t)
		s := ptyStart(t, bin, "connect", "--color", "never", sock)
		s.expectPrompt(``, "(QEMU) ", "")
		s.send("query-statu\t")
		// The only candidate: the line becomes query-status (no space
		// after: readline inserts the missing suffix only).
		s.expectPrompt(``, "(QEMU) ", "query-status")
		s.send("\r")
		s.expect(`\(QEMU\) query-status\r\n` + ptyControls + `\{ "status": "running", [^\r\n]*\}\r\n`)
		s.expectPrompt(``, "(QEMU) ", "")
		s.send("quit\r")
		s.expectExit(0)
	})

	t.Run("TabCompletesFromSchema", func(t *testing.T) {
		sock := qmptest.StartQEMU(t)
		s := ptyStart(t, bin, "connect", "--color", "never", sock)
		s.expectPrompt(``, "(QEMU) ", "")
		// Each Tab has one candidate, from QEMU's schema: the command,
		// an argument, an enum value, a union branch's member, a
		// nested member.
		steps := []struct{ typed, line string }{
			{"blockdev-ad\t", "blockdev-add"},
			{" dri\t", "blockdev-add driver="},
			{"null-c\t", "blockdev-add driver=null-co"},
			{" read-z\t", "blockdev-add driver=null-co read-zeroes="},
			{"on node-na\t", "blockdev-add driver=null-co read-zeroes=on node-name="},
			{"n0 detect-z\t", "blockdev-add driver=null-co read-zeroes=on node-name=n0 detect-zeroes="},
			{"unm\t", "blockdev-add driver=null-co read-zeroes=on node-name=n0 detect-zeroes=unmap"},
			{" discard=un\t", "blockdev-add driver=null-co read-zeroes=on node-name=n0 detect-zeroes=unmap discard=unmap"},
			{" cache.dir\t", "blockdev-add driver=null-co read-zeroes=on node-name=n0 detect-zeroes=unmap discard=unmap cache.direct="},
		}
		for _, st := range steps {
			s.send(st.typed)
			s.expectPrompt(``, "(QEMU) ", st.line)
		}
		// on and off are typed by the schema as booleans for QEMU.
		s.send("off\r")
		s.expect(`cache.direct=off\r\n` + ptyControls + `\{ \}\r\n`)
		s.expectPrompt(``, "(QEMU) ", "")
		s.send("query-named-block-nodes flat=on\r")
		s.expect(`"node-name": "n0"`)
		s.expectPrompt(``, "(QEMU) ", "")
		s.send("quit\r")
		s.expectExit(0)
	})

	t.Run("ReconnectPromptShowsState", func(t *testing.T) {
		path := filepath.Join(ptyShortTempDir(t), "qmp.sock")
		q := qmptest.StartQEMUAt(t, path)
		s := ptyStart(t, bin, "connect", "--reconnect", "--color", "never", path)
		s.expectPrompt(``, "(QEMU) ", "")
		s.send("query-sta")
		s.expectPrompt(``, "(QEMU) ", "query-sta")

		q.Kill()
		// The notice above, the prompt saying so, the half-typed line
		// kept. If QEMU dies with bytes from us still unread in its socket,
		// the kernel reports a reset rather than an end.
		s.expectPrompt(`connection lost: [^\r\n]*(connection closed by peer|connection reset by peer); reconnecting\r\n`+ptyControls,
			"[disconnected] (QEMU) ", "query-sta")
		s.send("tus\r")
		s.expect(`not sent: disconnected, reconnecting \([^\r\n]*\)\r\n`)
		s.expectPrompt(``, "[disconnected] (QEMU) ", "")

		qmptest.StartQEMUAt(t, path)
		s.expectPrompt(`reconnected to QEMU \d+\.\d+\.\d+[^\r\n]*\r\n`+ptyControls, "(QEMU) ", "")
		s.send("query-status\r")
		s.expect(`\(QEMU\) query-status\r\n` + ptyControls + `\{ "status": "running", [^\r\n]*\}\r\n`)
		s.expectPrompt(``, "(QEMU) ", "")
		s.send("\x04")
		s.expectExit(0)
	})

	t.Run("CtrlCAbandonsTheLine", func(t *testing.T) {
		sock := qmptest.StartQEMU(t)
		s := ptyStart(t, bin, "connect", "--color", "never", sock)
		s.expectPrompt(``, "(QEMU) ", "")
		s.send("stop")
		s.expectPrompt(``, "(QEMU) ", "stop")
		s.send("\x03")
		// Nothing between ^C and a fresh prompt: the line was not sent.
		s.expectPrompt(`\(QEMU\) stop\^C\r\n`, "(QEMU) ", "")

		// The shell survived and runs the next line; the VM still runs,
		// so the abandoned stop never reached QEMU.
		s.send("query-status\r")
		s.expect(`\(QEMU\) query-status\r\n` + ptyControls + `\{ "status": "running", [^\r\n]*\}\r\n`)
		s.expectPrompt(``, "(QEMU) ", "")

		// Ctrl-C inside a transaction abandons the whole transaction:
		// it is never sent (had it been, its abort action would have
		// failed it, with an error printed before the next result).
		s.send("transaction(\r")
		s.expectPrompt(``, "transaction> ", "")
		s.send("abort\r")
		s.expectPrompt(`transaction> abort\r\n`, "transaction> ", "")
		s.send("\x03")
		s.expectPrompt(`transaction> \^C\r\n`+ptyControls+`transaction abandoned\r\n`, "(QEMU) ", "")
		s.send("query-status\r")
		s.expect(`\(QEMU\) query-status\r\n` + ptyControls + `\{ "status": "running", [^\r\n]*\}\r\n`)
		s.expectPrompt(``, "(QEMU) ", "")
		s.send("\x04")
		s.expectExit(0)
	})

	// Between lines, while the reply is printed, the terminal is not in
	// raw mode, and Ctrl-C there is SIGINT, not a key. It must not end the
	// shell any more than Ctrl-C at the prompt does.
	t.Run("SIGINTDoesNotEndShell", func(t *testing.T) {
		sock := qmptest.StartQEMU(t)
		s := ptyStart(t, bin, "connect", "--color", "never", sock)
		s.expectPrompt(``, "(QEMU) ", "")
		s.send("query-")
		s.expectPrompt(``, "(QEMU) ", "query-")
		// The kernel delivers the signal at once, and at once the Go
		// runtime decides whether to kill the process: whether anything
		// is listening for SIGINT. The os/signal goroutine hands it to the
		// listeners later, so on a loaded machine the command typed next
		// may already be waiting for its reply, and be interrupted.
		if err := s.cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		s.send("status\r")
		s.expect(`\(QEMU\) query-status\r\n` + ptyControls +
			`(?:\{ "status": "running", [^\r\n]*\}|\r\n` + ptyControls + `interrupted: stopped waiting for the reply)\r\n`)
		s.expectPrompt(``, "(QEMU) ", "")
		s.send("\x04")
		s.expectExit(0) // not killed by the signal
	})
}

// ptyPrompt matches prompt followed by the line being edited, text, as
// the last thing on the terminal: readline redraws a line by clearing it
// and writing it again, and writes " \b" after an empty one.
func ptyPrompt(prompt, text string) string {
	return ptyControls + regexp.QuoteMeta(prompt+text) + `(?: \x08)?$`
}

// ptyControls matches what readline writes between lines of output when
// it redraws: control sequences, carriage returns, and empty prompts. An
// empty prompt can be drawn, and at once cleared, beneath output that the
// shell writes just after a line was entered, while readline still
// believes it is reading (see expectPrompt).
const ptyControls = `(?:\x1b\[[0-9;?]*[A-Za-z]|\r|(?:\(QEMU\)|\(HMP\)|transaction>)  \x08)*`

// ptyBuildQmpsh builds the qmpsh binary into the test's temporary
// directory, with the race detector when the test has it, so that the
// process under test is checked too.
func ptyBuildQmpsh(t *testing.T) string {
	t.Helper()
	qmptest.RequireQEMU(t, "qemu-system-x86_64")
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go is not on PATH to build qmpsh: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "qmpsh")
	args := []string{"build", "-o", bin}
	if ptyRaceEnabled() {
		args = append(args, "-race")
	}
	out, err := exec.Command(goBin, append(args, "github.com/qmpsh/qmpsh")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

func ptyRaceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// ptyShortTempDir is a temporary directory with a path short enough for a
// UNIX socket (t.TempDir's, named after the test, may not be).
func ptyShortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "qmpsh-pty")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// ptySession is a qmpsh process on a pseudo-terminal and everything it
// has written to it.
type ptySession struct {
	t         *testing.T
	cmd       *exec.Cmd
	pty       *os.File
	stateHome string

	mu    sync.Mutex
	out   []byte
	pos   int  // output before pos has been matched by expect
	ended bool // the reader has stopped
	more  chan struct{}

	readDone chan struct{}
	waitDone chan struct{}
	waitErr  error
}

// ptyStart runs bin with args on a new 24x200 pseudo-terminal, with TERM,
// HOME and XDG_STATE_HOME of its own. The process is killed, and every
// goroutine watching it ended, when the test ends.
func ptyStart(t *testing.T, bin string, args ...string) *ptySession {
	t.Helper()
	return ptyStartStdout(t, bin, nil, args...)
}

// ptyStartStdout is ptyStart with standard output stdout instead of the
// terminal, unless nil.
func ptyStartStdout(t *testing.T, bin string, stdout *os.File, args ...string) *ptySession {
	t.Helper()
	home := t.TempDir()
	s := &ptySession{
		t:         t,
		cmd:       exec.Command(bin, args...),
		stateHome: filepath.Join(home, "state"),
		more:      make(chan struct{}, 1),
		readDone:  make(chan struct{}),
		waitDone:  make(chan struct{}),
	}
	env := []string{"TERM=xterm", "HOME=" + home, "XDG_STATE_HOME=" + s.stateHome}
	if _, ok := os.LookupEnv("GORACE"); !ok {
		// A race-enabled binary otherwise sleeps a second on exit.
		env = append(env, "GORACE=atexit_sleep_ms=0")
	}
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "TERM", "HOME", "XDG_STATE_HOME", "NO_COLOR", "QMP_SOCKET":
		default:
			env = append(env, kv)
		}
	}
	s.cmd.Env = env
	if stdout != nil {
		s.cmd.Stdout = stdout // pty leaves a stream already set alone
	}
	// Wide enough that no line wraps.
	f, err := pty.StartWithSize(s.cmd, &pty.Winsize{Rows: 24, Cols: 200})
	if errors.Is(err, pty.ErrUnsupported) {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err != nil {
		t.Fatalf("starting %s in a pty: %v", bin, err)
	}
	s.pty = f
	go s.read()
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.waitDone)
	}()
	t.Cleanup(func() {
		select {
		case <-s.waitDone:
		default:
			s.cmd.Process.Kill()
			<-s.waitDone
		}
		// The master is in Go's poller: closing it ends the read.
		s.pty.Close()
		<-s.readDone
		if t.Failed() {
			t.Logf("the terminal showed:\n%s", s.screen())
		}
	})
	return s
}

// read copies the terminal's output into s.out until the terminal is
// closed (on Linux, reading the master fails with EIO once the process
// has exited and closed its side).
func (s *ptySession) read() {
	defer close(s.readDone)
	buf := make([]byte, 4096)
	for {
		n, err := s.pty.Read(buf)
		s.mu.Lock()
		s.out = append(s.out, buf[:n]...)
		if err != nil {
			s.ended = true
		}
		s.mu.Unlock()
		select {
		case s.more <- struct{}{}:
		default:
		}
		if err != nil {
			return
		}
	}
}

// send types s on the terminal.
func (s *ptySession) send(text string) {
	s.t.Helper()
	if _, err := s.pty.Write([]byte(text)); err != nil {
		s.t.Fatalf("typing %q: %v", text, err)
	}
}

// expect waits up to ptyTimeout for the output not yet matched to match
// the regular expression re, then marks it matched up to the end of the
// match. It fails the test with the terminal's contents otherwise.
func (s *ptySession) expect(re string) {
	s.t.Helper()
	s.expectWhen(re, nil)
}

// expectPrompt waits for output matching the regular expression before,
// then the prompt and the text being edited, to be the last thing on the
// terminal, with readline reading: the terminal in raw mode.
//
// Seeing the prompt is not enough. readline redraws the prompt beneath
// whatever the shell writes while it believes it is reading a line, and
// that belief lags behind: after Enter, the reply can be written, and a
// prompt drawn beneath it, before readline has noticed that the line was
// read, put the terminal back in cooked mode and returned. Keys typed then
// would be handled by the kernel's line discipline: echoed by it, Ctrl-C
// turned into SIGINT, Ctrl-D into end of file. readline switches to raw
// mode before it draws the prompt of a new line, so raw mode and a prompt
// last on the screen mean it is reading.
func (s *ptySession) expectPrompt(before, prompt, text string) {
	s.t.Helper()
	s.expectWhen(before+ptyPrompt(prompt, text), s.rawMode)
}

// expectWhen is expect, with the match counting only when ready, if not
// nil, says so at the time.
func (s *ptySession) expectWhen(re string, ready func() bool) {
	s.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.NewTimer(ptyTimeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		loc := rx.FindIndex(s.out[s.pos:])
		ended := s.ended
		if loc != nil && (ready == nil || ready()) {
			s.pos += loc[1]
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		if ended {
			s.t.Fatalf("the terminal closed (qmpsh: %s) before showing %q; after what was matched it showed %q",
				s.exitStatus(), re, s.pending())
		}
		select {
		case <-s.more:
		case <-deadline.C:
			s.t.Fatalf("after %v the terminal has not shown %q (in raw mode: %v); after what was matched it showed %q",
				ptyTimeout, re, s.rawMode(), s.pending())
		}
	}
}

// rawMode tells whether the terminal is in raw mode, as readline sets it
// while it reads a line. On Linux the master reports the terminal's
// settings.
func (s *ptySession) rawMode() bool {
	rc, err := s.pty.SyscallConn()
	if err != nil {
		return false
	}
	var tio syscall.Termios
	var errno syscall.Errno
	err = rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TCGETS, uintptr(unsafe.Pointer(&tio)))
	})
	return err == nil && errno == 0 && tio.Lflag&(syscall.ICANON|syscall.ISIG|syscall.ECHO) == 0
}

// expectExit waits for the process to exit with the status code.
func (s *ptySession) expectExit(code int) {
	s.t.Helper()
	select {
	case <-s.waitDone:
	case <-time.After(ptyTimeout):
		s.t.Fatalf("qmpsh has not exited after %v; it showed %q", ptyTimeout, s.pending())
	}
	var xe *exec.ExitError
	switch {
	case s.waitErr == nil && code == 0:
	case errors.As(s.waitErr, &xe) && xe.ExitCode() == code:
	default:
		s.t.Fatalf("qmpsh exited with %v, want status %d; it showed %q", s.waitErr, code, s.pending())
	}
}

// exitStatus describes how the process ended, once it has.
func (s *ptySession) exitStatus() string {
	select {
	case <-s.waitDone:
	case <-time.After(ptyTimeout):
		return "still running"
	}
	if s.waitErr == nil {
		return "exit status 0"
	}
	return s.waitErr.Error()
}

func (s *ptySession) pending() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.out[s.pos:])
}

// screen is everything the terminal showed, control sequences escaped.
func (s *ptySession) screen() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := fmt.Sprintf("%q", s.out)
	return strings.ReplaceAll(q[1:len(q)-1], `\r\n`, "\\r\\n\n")
}

// ptyStopVM pauses the VM through the QMP monitor at sock, on a raw
// connection of its own: greeting, qmp_capabilities, stop.
func ptyStopVM(t *testing.T, sock string) {
	t.Helper()
	c, err := net.DialTimeout("unix", sock, ptyTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ptyTimeout))
	r := bufio.NewReader(c)
	readUntil := func(prefix string) {
		t.Helper()
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				t.Fatalf("second monitor: waiting for %s: %v", prefix, err)
			}
			if bytes.HasPrefix(line, []byte(prefix)) {
				return
			}
			if bytes.HasPrefix(line, []byte(`{"error"`)) {
				t.Fatalf("second monitor: %s", bytes.TrimSpace(line))
			}
		}
	}
	readUntil(`{"QMP"`)
	for _, cmd := range []string{"qmp_capabilities", "stop"} {
		if _, err := fmt.Fprintf(c, `{"execute": %q}`+"\n", cmd); err != nil {
			t.Fatal(err)
		}
		readUntil(`{"return"`)
	}
}
