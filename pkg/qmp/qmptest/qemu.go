package qmptest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireQEMUEnv is the environment variable that turns a missing QEMU
// from a skip into a failure. CI sets it to 1 so that integration tests
// cannot pass by silently skipping.
const RequireQEMUEnv = "QMPSH_REQUIRE_QEMU"

// startTimeout bounds how long a launcher waits for QEMU to answer. QEMU
// normally does within tens of milliseconds; the bound only matters when
// QEMU hangs, and must be generous for a loaded CI machine.
const startTimeout = 60 * time.Second

// RequireQEMU returns the path of binary (such as "qemu-system-x86_64" or
// "qemu-storage-daemon"). When binary is not on PATH it skips the test,
// saying so, or fails it when QMPSH_REQUIRE_QEMU is set to a true value.
func RequireQEMU(t testing.TB, binary string) string {
	t.Helper()
	path, err := exec.LookPath(binary)
	if err == nil {
		return path
	}
	if required, _ := strconv.ParseBool(os.Getenv(RequireQEMUEnv)); required {
		t.Fatalf("qmptest: %s is not on PATH (%v) and %s=%s forbids skipping; install QEMU (make qemu)",
			binary, err, RequireQEMUEnv, os.Getenv(RequireQEMUEnv))
	}
	t.Skipf("qmptest: skipping: %s is not on PATH (%v); install QEMU (make qemu) to run this test", binary, err)
	return ""
}

// StartQEMU starts "qemu-system-x86_64 -M none -nodefaults -display none"
// plus extraArgs, with a QMP monitor listening on a UNIX socket, and
// returns the socket's path. When StartQEMU returns, QEMU has processed all
// its options and a connection to the path gets the greeting; if QEMU
// fails to start, the test fails with QEMU's output. QEMU is killed and
// reaped when the test ends.
//
// Like QEMU's, the monitor serves one client at a time: a second
// connection is accepted by the kernel but greeted only after the first
// one closes.
func StartQEMU(t testing.TB, extraArgs ...string) string {
	t.Helper()
	bin := RequireQEMU(t, "qemu-system-x86_64")
	return startListening(t, func(path string) (*Process, error) { return LaunchQEMU(bin, path, extraArgs...) })
}

// StartStorageDaemon is StartQEMU for qemu-storage-daemon.
func StartStorageDaemon(t testing.TB, extraArgs ...string) string {
	t.Helper()
	bin := RequireQEMU(t, "qemu-storage-daemon")
	return startListening(t, func(path string) (*Process, error) { return LaunchStorageDaemon(bin, path, extraArgs...) })
}

// StartQEMUClient starts qemu-system-x86_64 like StartQEMU, but with a
// client-mode QMP monitor (-qmp unix:ADDR) that dials addr, for testing
// code that accepts connections from QEMU. The caller must be listening on
// addr already: QEMU dials once, during startup, and exits if that fails.
//
// The caller's Accept returns once QEMU has connected; give the listener
// a deadline, since Accept would block forever if QEMU failed to start.
// QEMU's output is logged when the test fails. The test may signal the
// returned process (to simulate a crash, say) or Wait for it; it is killed
// and reaped when the test ends either way.
func StartQEMUClient(t testing.TB, addr string, extraArgs ...string) *exec.Cmd {
	t.Helper()
	// QEMU's option parser splits on commas; a doubled one is literal.
	return startClient(t, append([]string{"-qmp", "unix:" + strings.ReplaceAll(addr, ",", ",,")}, extraArgs...))
}

// startClient starts a minimal qemu-system-x86_64 with args, which set
// up a client-mode monitor, for StartQEMUClient and StartQEMUClientTLS.
func startClient(t testing.TB, args []string) *exec.Cmd {
	t.Helper()
	bin := RequireQEMU(t, "qemu-system-x86_64")
	args = append([]string{"-M", "none", "-nodefaults", "-display", "none"}, args...)
	p, err := launch(bin, args, nil)
	if err != nil {
		t.Fatalf("qmptest: %v", err)
	}
	stopAtEnd(t, p)
	return p.cmd
}

// startListening launches QEMU with its QMP socket in a new temporary
// directory, failing the test if it does not start, and stops it and
// removes the directory when the test ends.
func startListening(t testing.TB, launch func(path string) (*Process, error)) string {
	t.Helper()
	dir, err := shortTempDir("qmp")
	if err != nil {
		t.Fatalf("qmptest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "qmp.sock")
	p, err := launch(path)
	if err != nil {
		t.Fatalf("qmptest: %v", err)
	}
	stopAtEnd(t, p)
	return path
}

// stopAtEnd kills and reaps p when the test ends, so that no QEMU and no
// zombie outlives it and no output-copying goroutine trips goleak, and
// shows QEMU's output if the test failed.
func stopAtEnd(t testing.TB, p *Process) {
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() && p.out.Len() > 0 {
			t.Logf("output of %s:\n%s", filepath.Base(p.cmd.Path), p.out.String())
		}
	})
}

// Process is a QEMU process started by LaunchQEMU or LaunchStorageDaemon:
// the launchers behind StartQEMU and StartStorageDaemon, for programs that
// are not tests (the benchmark driver, cmd/qmpsh-bench) and so have no
// testing.TB to fail or to clean up with. The caller must call Stop.
type Process struct {
	cmd      *exec.Cmd
	out      *Buffer
	stopOnce sync.Once
}

// LaunchQEMU starts bin, a qemu-system-* binary, as "-M none -nodefaults
// -display none" plus extraArgs, with a QMP monitor listening on a UNIX
// socket at path, which must not exist or be a socket (a dead QEMU's, say:
// it is replaced). It returns once QEMU has processed all its options and
// a connection to path gets the greeting; an error carries QEMU's output.
func LaunchQEMU(bin, path string, extraArgs ...string) (*Process, error) {
	return launchListening(bin, path, qemuArgs("", extraArgs))
}

// LaunchStorageDaemon is LaunchQEMU for qemu-storage-daemon, whose monitor
// is set up with --chardev socket,... and --monitor.
func LaunchStorageDaemon(bin, path string, extraArgs ...string) (*Process, error) {
	args := []string{
		"--chardev", "socket,id=qmptest,fd=3,server=on,wait=on",
		"--monitor", "chardev=qmptest",
	}
	return launchListening(bin, path, append(args, extraArgs...))
}

// qemuArgs is the command line of a minimal QEMU whose QMP monitor is on
// the listening socket passed as fd 3, its chardev with chardevOpts
// (",tls-creds=ID") added, then extraArgs.
func qemuArgs(chardevOpts string, extraArgs []string) []string {
	args := []string{
		"-M", "none", "-nodefaults", "-display", "none",
		"-chardev", "socket,id=qmptest,fd=3,server=on,wait=on" + chardevOpts,
		"-mon", "chardev=qmptest,mode=control",
	}
	return append(args, extraArgs...)
}

// launchListening runs QEMU with a monitor on a listening socket that we
// create and hand over as fd 3, as libvirt does. Because the socket
// listens before QEMU even starts, a client can connect at any time and
// its connection waits in the kernel's backlog until QEMU accepts it;
// there is nothing to poll for.
//
// The monitor is opened with wait=on, although libvirt uses wait=off. In
// QEMU 7.2 a QMP monitor moves its socket from the main thread to a
// monitor I/O thread shortly after it is created, and a connection that
// is already pending while that happens (as ours always is) can be
// accepted by both threads' event loops at once. The damage shows later:
// a monitor that never answers, "Expecting capabilities negotiation" in
// reply to qmp_capabilities, a failed assertion in QEMU's JSON parser, a
// segfault. Under CPU load that hit about one qemu-storage-daemon start in
// a few hundred. With wait=on QEMU accepts our first connection (probe's)
// synchronously while it parses the -chardev option, so the listening
// socket is not watched by any event loop during the move; after probe
// hangs up, only the I/O thread watches it. Thousands of starts under the
// same load then showed no failure.
func launchListening(bin, path string, args []string) (*Process, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(path)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	// Closing our copy must not unlink the path, which QEMU's copy of the
	// socket keeps serving.
	ln.SetUnlinkOnClose(false)
	return launchOn(bin, ln, args, func() (net.Conn, error) { return net.DialTimeout("unix", path, startTimeout) })
}

// launchOn runs QEMU with ln's socket as fd 3 (see launchListening) and
// probes it through a connection from dial.
func launchOn(bin string, ln syscall.Conn, args []string, dial func() (net.Conn, error)) (*Process, error) {
	f, err := nonblockingFile(ln)
	ln.(io.Closer).Close()
	if err != nil {
		return nil, err
	}
	p, err := launch(bin, args, f)
	f.Close()
	if err != nil {
		return nil, err
	}

	// The probe's connection is the one that wait=on waits for, so the
	// probe is what lets QEMU proceed. It also turns a QEMU that fails to
	// start into an immediate failure that shows QEMU's own message.
	if err := probe(dial); err != nil {
		p.Stop()
		return nil, fmt.Errorf("%s did not answer on its QMP socket: %v (%s)\n%s",
			filepath.Base(bin), err, p.cmd.ProcessState, p.out.String())
	}
	return p, nil
}

// nonblockingFile returns a descriptor of ln's socket for a child process,
// leaving the socket in non-blocking mode as QEMU's own listening sockets
// are. ln.File would not do: os/exec passes ExtraFiles through File.Fd,
// which switches a socket that came from the net package to blocking mode,
// and since a dup shares the open file's flags, QEMU would inherit a
// blocking listener. Then any wakeup without a pending connection (such
// as the double watch described at startListening) leaves a QEMU thread
// blocked in accept(2) for good; gdb showed exactly that in a hung
// qemu-storage-daemon. A descriptor that os.NewFile finds non-blocking is
// passed on unchanged.
func nonblockingFile(ln syscall.Conn) (*os.File, error) {
	rc, err := ln.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	var dupErr error
	err = rc.Control(func(s uintptr) {
		// The fork lock keeps the new descriptor from leaking into a
		// child that another goroutine starts before it is close-on-exec.
		syscall.ForkLock.RLock()
		defer syscall.ForkLock.RUnlock()
		if fd, dupErr = syscall.Dup(int(s)); dupErr == nil {
			syscall.CloseOnExec(fd)
			dupErr = syscall.SetNonblock(fd, true)
		}
	})
	if err == nil {
		err = dupErr
	}
	if err != nil {
		if fd >= 0 {
			syscall.Close(fd)
		}
		return nil, fmt.Errorf("duplicating the QMP socket: %w", err)
	}
	return os.NewFile(uintptr(fd), "qmp-listener"), nil
}

// probe reads the greeting, negotiates and leaves. The reply to
// qmp_capabilities comes from QEMU's main loop, so it arrives only once
// QEMU has processed all its options; the greeting alone would not prove
// that, since the monitor's I/O thread can greet earlier. If QEMU exits
// instead, the exit closes the socket and ends the read. QEMU notices the
// hang-up and then greets whichever client is queued next, with a fresh
// negotiation.
func probe(dial func() (net.Conn, error)) error {
	c, err := dial()
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(startTimeout))
	r := bufio.NewReader(c)
	line, err := r.ReadSlice('\n')
	if err != nil {
		return fmt.Errorf("reading greeting: %w", err)
	}
	if !bytes.HasPrefix(line, []byte(`{"QMP":`)) {
		return fmt.Errorf("unexpected greeting %q", line)
	}
	if _, err := c.Write([]byte(`{"execute": "qmp_capabilities"}`)); err != nil {
		return err
	}
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("negotiating: %w", err)
		}
		switch {
		case bytes.HasPrefix(line, []byte(`{"return"`)):
			return nil
		case bytes.Contains(line, []byte(`"error"`)):
			return fmt.Errorf("negotiating: %s", bytes.TrimSpace(line))
		}
		// Anything else is an event; QEMU sends none before negotiation,
		// but skipping them costs nothing.
	}
}

// launch starts bin with extra (if not nil) as fd 3, its output kept in
// memory, and arranges for the kernel to kill it if we die without
// stopping it.
func launch(bin string, args []string, extra *os.File) (*Process, error) {
	p := &Process{cmd: exec.Command(bin, args...), out: new(Buffer)}
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if extra != nil {
		p.cmd.ExtraFiles = []*os.File{extra}
	}
	setDeathSignal(p.cmd)
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	return p, nil
}

// Stop kills and reaps QEMU; only the first call does anything. Errors are
// expected: QEMU may have exited already, or the caller waited for it.
func (p *Process) Stop() {
	p.stopOnce.Do(func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	})
}

// Output returns what QEMU printed so far, on stdout and stderr.
func (p *Process) Output() string { return p.out.String() }

// Buffer is a bytes.Buffer safe for concurrent use: for output written by
// one goroutine (QEMU's output copied by os/exec, a client's log records,
// a shell's results) while a test reads it. The zero value is ready.
type Buffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // made by a waiter, closed by the next Write
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	return b.buf.Write(p)
}

// WaitFor waits until what was written holds n occurrences of s, waking
// on each write. The minute it allows is a bound for a broken program,
// not a timing: a test fails then, showing what was written.
func (b *Buffer) WaitFor(t testing.TB, s string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if !b.Wait(ctx, s, n) {
		t.Fatalf("no %d× %q in:\n%s", n, s, b.String())
	}
}

// Wait waits until what was written holds n occurrences of s, waking on
// each write, or until ctx ends, and reports whether they came.
func (b *Buffer) Wait(ctx context.Context, s string, n int) bool {
	for {
		b.mu.Lock()
		got := strings.Count(b.buf.String(), s)
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		ch := b.changed
		b.mu.Unlock()
		if got >= n {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Len returns how many bytes were written so far.
func (b *Buffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}
