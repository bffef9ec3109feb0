package cmd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/qmpsh/qmpsh/pkg/protocol"
	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/shell"
)

// WrapOptions are the inputs of qmpsh wrap.
type WrapOptions struct {
	ShellOptions
	// QEMU is the command line to run, to which -qmp unix:SOCKET is
	// appended.
	QEMU []string
	// QEMULog is where QEMU's standard output and error go (appended);
	// "" for a fresh file in the temporary directory.
	QEMULog string
}

func newWrapCmd(g *GlobalOptions) *cobra.Command {
	opts := &WrapOptions{ShellOptions: ShellOptions{GlobalOptions: g}}
	c := &cobra.Command{
		Use:   "wrap [flags] -- QEMU-COMMAND [ARG...]",
		Short: "Start QEMU with a private QMP socket and open the shell",
		Long: `Start QEMU with a QMP monitor that dials a private socket (-qmp unix:PATH
is appended to the command line), wait for it to connect, and open the
shell on it.

QEMU's own output (standard output and error) goes to a log file, named
on stderr: --qemu-log FILE (appended to), else a fresh file in the
temporary directory, removed on exit if QEMU wrote nothing. QEMU's
standard input is /dev/null, and QEMU runs in a process group of its own,
so Ctrl-C at the shell never reaches it.

When the shell ends (Ctrl-D, quit, end of input, SIGTERM or SIGHUP),
QEMU is asked to quit over QMP, then sent SIGTERM, then SIGKILL, each
after --timeout. The exit status is then the shell's.

When QEMU exits first (a quit typed as {"execute": "quit"}, the guest
powering off, a crash), the shell ends without waiting for more input,
and the exit status is QEMU's: its exit status, or 128+N when signal N
killed it. If it exits 0, the shell's status counts (1 if a command
failed).

If QEMU exits before connecting, or does not connect within --timeout,
the exit status is 3 (4 for the timeout), with QEMU's last message and
the log file named on stderr.

` + exitStatusHelp,
		Example: `  qmpsh wrap -- qemu-system-x86_64 -M q35 -m 2G -display none disk.qcow2
  echo query-status | qmpsh wrap -- qemu-system-x86_64 -M none -display none
  qmpsh wrap --qemu-log vm.log -- qemu-system-x86_64 -nodefaults -display none`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("wrap needs a QEMU command line after --")
			}
			for _, a := range args[1:] {
				if a == "-daemonize" || a == "--daemonize" {
					return usageErrorf("wrap cannot follow a QEMU that daemonizes: drop %s", a)
				}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			opts.QEMU = args
			return wrapRun(c.Context(), opts)
		},
	}
	f := c.Flags()
	// The first argument that is not a flag starts QEMU's command line,
	// so "qmpsh wrap qemu-system-x86_64 -M none" works without "--".
	f.SetInterspersed(false)
	f.BoolVarP(&opts.HMP, "hmp", "H", false, "send every line to the human monitor (HMP)")
	f.StringVar(&opts.QEMULog, "qemu-log", "", "append QEMU's output to `FILE` (default: a new file in the temporary directory)")
	return c
}

func wrapRun(ctx context.Context, opts *WrapOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := opts.check(); err != nil {
		return err
	}
	if len(opts.QEMU) == 0 {
		return usageErrorf("wrap needs a QEMU command line after --")
	}
	log, err := openQEMULog(opts.QEMULog)
	if err != nil {
		return err
	}
	defer log.finish()
	dir, err := privateDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "qmp.sock")

	// SIGTERM and SIGHUP (and Ctrl-C, but for a person at the shell, where
	// it stops waiting for a reply) end the session as Ctrl-D does, QEMU
	// included. Once one has arrived, the next acts as it normally would.
	sigs := []os.Signal{syscall.SIGTERM, syscall.SIGHUP}
	if !opts.IO.InTTY {
		sigs = append(sigs, os.Interrupt)
	}
	ctx, stopSignals := signal.NotifyContext(ctx, sigs...)
	defer stopSignals()
	context.AfterFunc(ctx, stopSignals)

	// The shell reads stdin through a reader that QEMU's exit can end.
	g := *opts.GlobalOptions
	ios := *g.IO
	stdin := newCancelableReader(ios.In)
	ios.In = stdin
	g.IO = &ios
	opts.GlobalOptions = &g
	inner, err := opts.editor()
	if err != nil {
		return err
	}
	var qemu *qemuProcess
	var startErr error
	// Ctrl-C ends the wait for QEMU too, as it does accept's.
	actx, stopInterrupt := signal.NotifyContext(ctx, os.Interrupt)
	defer stopInterrupt()
	actx, cancelAccept := context.WithTimeout(actx, opts.Timeout)
	defer cancelAccept()
	// QEMU is started once the socket it dials is listening.
	listening := func(string) {
		argv := append(opts.QEMU[1:len(opts.QEMU):len(opts.QEMU)],
			"-qmp", "unix:"+strings.ReplaceAll(sock, ",", ",,")) // QEMU's option syntax doubles commas
		qemu, startErr = startQEMU(opts.QEMU[0], argv, log.f)
		if startErr != nil {
			cancelAccept()
			return
		}
		fmt.Fprintf(opts.IO.ErrOut, "qmpsh: started QEMU (pid %d); its output goes to %s\n", qemu.pid(), log.name)
		// A QEMU that exits without connecting ends the wait at once.
		go func() {
			select {
			case <-qemu.done:
				cancelAccept()
			case <-actx.Done():
			}
		}()
	}
	client, closeLog, err := opts.newClient(inner.Writer(), qmp.WithListening(listening))
	if err != nil {
		inner.Close()
		return err
	}
	defer closeLog()

	err = client.Accept(actx, sock)
	cancelAccept()
	stopInterrupt()
	if err != nil {
		inner.Close()
		return wrapStartError(ctx, opts, qemu, startErr, log, err)
	}
	defer client.Disconnect()

	// The shell's input ends when QEMU exits, or a signal says to stop,
	// rather than when the user next types a line.
	ended := make(chan struct{})
	var endOnce sync.Once
	end := func() {
		endOnce.Do(func() {
			close(ended)
			stdin.cancel()
		})
	}
	context.AfterFunc(ctx, end)
	go func() {
		select {
		case <-qemu.done:
			end()
		case <-ended:
		}
	}()
	ed := &endingEditor{Editor: inner, end: ended}
	defer ed.Close()

	label := fmt.Sprintf("QEMU (pid %d)", qemu.pid())
	shellErr := opts.runWrapShell(ctx, client, ed, qemu)
	return opts.finish(client, qemu, log, label, shellErr)
}

// wrapStartError kills QEMU, if it runs, and explains why the shell could
// not start.
func wrapStartError(ctx context.Context, opts *WrapOptions, qemu *qemuProcess, startErr error, log *qemuLog, err error) error {
	if startErr != nil {
		return &ExitError{Code: ExitConnection, Err: fmt.Errorf("starting QEMU: %w", startErr)}
	}
	if qemu == nil { // the socket could not be created
		var ce *protocol.ConnectError
		if errors.As(err, &ce) {
			err = ce.Err
		}
		return &ExitError{Code: ExitConnection, Err: fmt.Errorf("listening for QEMU: %w", err)}
	}
	timedOut := errors.Is(err, context.DeadlineExceeded)
	if !timedOut && ctx.Err() == nil {
		// QEMU hung up during the greeting or negotiation: it connects
		// before it has checked all its options, and is most likely
		// exiting over one of them.
		qemu.waitFor(opts.Timeout)
	}
	select {
	case <-qemu.done:
		return &ExitError{Code: ExitConnection, Err: fmt.Errorf("%s before the QMP session started%s%s",
			qemu.describe(), log.lastMessage(filepath.Base(opts.QEMU[0])), log.where())}
	default:
	}
	qemu.kill()
	switch {
	case timedOut:
		return &ExitError{Code: ExitTimeout, Err: fmt.Errorf("QEMU did not connect within %v; killed it%s",
			opts.Timeout, log.where())}
	case ctx.Err() != nil:
		return &ExitError{Code: ExitConnection, Err: fmt.Errorf("interrupted while waiting for QEMU to connect; killed it%s",
			log.where())}
	}
	return connectionError("QEMU", fmt.Errorf("%w; killed it%s", err, log.where()))
}

// runWrapShell is runShell, but leaves the client connected, so that QEMU
// can be asked to quit afterwards.
func (o *WrapOptions) runWrapShell(ctx context.Context, client *qmp.Client, ed shell.Editor, qemu *qemuProcess) error {
	banner := ""
	if g := client.Greeting(); g != nil {
		banner = fmt.Sprintf("Connected to QEMU %s (pid %d). Type help for help, Ctrl-D to leave and quit QEMU.",
			g.Version, qemu.pid())
	}
	o.quitsQEMU = true
	return o.shellSession(ctx, client, ed, banner)
}

// finish ends QEMU, if it still runs, and decides the exit status.
func (o *WrapOptions) finish(client *qmp.Client, qemu *qemuProcess, log *qemuLog, label string, shellErr error) error {
	var lost *shell.ConnectionLostError
	if errors.As(shellErr, &lost) || client.Runstate() != protocol.Running {
		// The connection dropped: QEMU is most likely on its way out.
		qemu.waitFor(o.Timeout)
	}
	select {
	case <-qemu.done:
		// QEMU exited first: its status is qmpsh's.
		if code := qemu.exitCode(); code != 0 {
			return &ExitError{Code: code, Err: fmt.Errorf("%s%s", qemu.describe(), log.where()),
				Syntax: code == ExitUsage} // no pointer to --help: it is QEMU's status
		}
		if o.IO.InTTY {
			fmt.Fprintln(o.IO.ErrOut, "qmpsh: QEMU exited.")
		}
		if errors.As(shellErr, &lost) {
			return nil // QEMU's exit is what ended the connection
		}
		return shellErr
	default:
	}
	o.stopQEMU(client, qemu)
	if shellErr != nil && !errors.Is(shellErr, shell.ErrCommandFailed) {
		return connectionError(label, shellErr)
	}
	return shellErr
}

// stopQEMU asks QEMU to quit over QMP, then with SIGTERM, then kills it,
// waiting --timeout after each, and reaps it.
func (o *WrapOptions) stopQEMU(client *qmp.Client, qemu *qemuProcess) {
	if client.Runstate() == protocol.Running {
		ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
		_, err := client.Execute(ctx, "quit", nil)
		cancel()
		var ee *qmp.ExecuteError
		var se *protocol.StateError
		// A lost reply is normal: QEMU may hang up before it is read.
		if !errors.As(err, &ee) && !errors.As(err, &se) && qemu.waitFor(o.Timeout) {
			return
		}
	}
	if qemu.signal(syscall.SIGTERM) == nil {
		if qemu.waitFor(o.Timeout) {
			return
		}
		fmt.Fprintf(o.IO.ErrOut, "qmpsh: QEMU did not quit within %v of SIGTERM; killing it\n", o.Timeout)
	}
	qemu.kill()
}

// qemuProcess is a started QEMU and the goroutine that waits for it.
type qemuProcess struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once QEMU has exited and been reaped
	err  error         // Wait's, once done is closed
}

// startQEMU starts bin with args, output to log, input from /dev/null,
// in a process group of its own and (on Linux) with a signal for when
// qmpsh dies.
func startQEMU(bin string, args []string, log *os.File) (*qemuProcess, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stdout = log
	cmd.Stderr = log
	setQEMUProcAttr(cmd)
	p := &qemuProcess{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Linux sends the parent-death signal when the thread that
		// started the child ends, not the process: keep this thread for
		// as long as QEMU runs.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

func (p *qemuProcess) pid() int { return p.cmd.Process.Pid }

// waitFor waits up to d for QEMU to exit, and tells whether it has.
func (p *qemuProcess) waitFor(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

func (p *qemuProcess) signal(sig os.Signal) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	return p.cmd.Process.Signal(sig)
}

// kill kills QEMU, if it runs, and waits until it is reaped.
func (p *qemuProcess) kill() {
	p.signal(os.Kill)
	<-p.done
}

// exitCode is QEMU's exit status as a shell reports it: 128+N when
// signal N killed it. Valid once done is closed.
func (p *qemuProcess) exitCode() int {
	ps := p.cmd.ProcessState
	if ps == nil {
		return ExitConnection
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// describe says how QEMU ended, once done is closed.
func (p *qemuProcess) describe() string {
	ps := p.cmd.ProcessState
	if ps == nil {
		return fmt.Sprintf("QEMU: %v", p.err)
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Sprintf("QEMU was killed by signal %d (%v)", int(ws.Signal()), ws.Signal())
	}
	return fmt.Sprintf("QEMU exited with status %d", ps.ExitCode())
}

// qemuLog is the file QEMU's output goes to.
type qemuLog struct {
	f     *os.File
	name  string
	start int64 // its size before QEMU started
	temp  bool  // ours: removed if QEMU wrote nothing
}

func openQEMULog(name string) (*qemuLog, error) {
	if name == "" {
		f, err := os.CreateTemp("", "qmpsh-wrap-*.log")
		if err != nil {
			return nil, &ExitError{Code: ExitConnection, Err: fmt.Errorf("creating QEMU's log file: %w", err)}
		}
		return &qemuLog{f: f, name: f.Name(), temp: true}, nil
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, &ExitError{Code: ExitUsage, Err: fmt.Errorf("--qemu-log: %w", err)}
	}
	l := &qemuLog{f: f, name: name}
	if fi, err := f.Stat(); err == nil {
		l.start = fi.Size()
	}
	return l, nil
}

// written is how much QEMU has written to the log.
func (l *qemuLog) written() int64 {
	fi, err := os.Stat(l.name)
	if err != nil {
		return 0
	}
	return fi.Size() - l.start
}

// where names the log in a message, if QEMU wrote anything to it.
func (l *qemuLog) where() string {
	if l.written() <= 0 {
		return ""
	}
	return "; its output is in " + l.name
}

// lastMessage is ": " and the last error QEMU reported in the log
// ("qemu-system-x86_64: -M foo: unsupported machine type"), else its last
// line, or "" if it wrote nothing.
func (l *qemuLog) lastMessage(prog string) string {
	const tail = 8 << 10
	n := l.written()
	if n <= 0 {
		return ""
	}
	off := l.start
	if n > tail {
		off += n - tail
	}
	f, err := os.Open(l.name)
	if err != nil {
		return ""
	}
	defer f.Close()
	var last, lastError string
	sc := bufio.NewScanner(io.NewSectionReader(f, off, tail))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		last = line
		if strings.HasPrefix(line, prog+": ") && !strings.HasPrefix(line, prog+": warning:") {
			lastError = line
		}
	}
	if lastError != "" {
		return ": " + lastError
	}
	if last != "" {
		return ": " + last
	}
	return ""
}

// finish closes the log, and removes a temporary one QEMU wrote nothing to.
func (l *qemuLog) finish() {
	l.f.Close()
	if l.temp && l.written() <= 0 {
		os.Remove(l.name)
	}
}

// endingEditor is an editor whose input ends (ReadLine returns io.EOF)
// once end is closed. Its input, stdin, must be cancelled then: that ends
// a read already waiting for a line, and this the lines read ahead.
type endingEditor struct {
	shell.Editor
	end <-chan struct{}
}

func (e *endingEditor) ReadLine() (string, error) {
	select {
	case <-e.end:
		return "", io.EOF
	default:
	}
	line, err := e.Editor.ReadLine()
	select {
	case <-e.end:
		return "", io.EOF
	default:
	}
	return line, err
}

// cancelableReader is a reader whose Read, even one waiting for input,
// returns io.EOF once cancel is called. The underlying reader is read on
// a goroutine, which a cancelled Read leaves behind until that read
// returns; nothing is read after cancel.
//
// Neither readline nor a bufio.Scanner can otherwise stop waiting for a
// line: closing a terminal's descriptor does not end a read(2) on it.
type cancelableReader struct {
	r         io.Reader
	cancelled chan struct{}
	once      sync.Once
	mu        sync.Mutex // one Read at a time
}

type readResult struct {
	b   []byte
	err error
}

func newCancelableReader(r io.Reader) *cancelableReader {
	return &cancelableReader{r: r, cancelled: make(chan struct{})}
}

func (c *cancelableReader) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.cancelled:
		return 0, io.EOF
	default:
	}
	if len(p) == 0 {
		return 0, nil
	}
	// The goroutine reads into a buffer of its own: p is the caller's
	// again as soon as Read returns.
	ch := make(chan readResult, 1)
	buf := make([]byte, len(p))
	go func() {
		n, err := c.r.Read(buf)
		ch <- readResult{buf[:n], err}
	}()
	select {
	case r := <-ch:
		return copy(p, r.b), r.err
	case <-c.cancelled:
		return 0, io.EOF
	}
}

func (c *cancelableReader) cancel() { c.once.Do(func() { close(c.cancelled) }) }

// Close cancels; the underlying reader stays open.
func (c *cancelableReader) Close() error {
	c.cancel()
	return nil
}
