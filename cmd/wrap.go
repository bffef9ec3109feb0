package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

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

func newWrapCmd(g *GlobalOptions, runF func(context.Context, *WrapOptions) error) *cobra.Command {
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

When the shell ends (Ctrl-D, quit, end of input, SIGTERM or SIGHUP, or
standard output closed, as by | head), QEMU is asked to quit over QMP,
then sent SIGTERM, then SIGKILL, each after --timeout. The exit status is
then the shell's (141, quietly, for a closed standard output).

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
			return runF(c.Context(), opts)
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
	dir, err := privateDir(opts.Getenv)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	ctx, stopSignals := opts.endSignals(ctx)
	defer stopSignals()

	// Standard output closed under the session (| head) ends it as
	// Ctrl-D does, so that QEMU is asked to quit and its log goes, and
	// qmpsh exits 141, quietly. SIGPIPE is caught for that (it would
	// kill qmpsh, and QEMU with it); a write then fails with EPIPE, and
	// only a failed write to stdout ends the session.
	stopPipe := opts.Signals(make(chan os.Signal, 1), syscall.SIGPIPE)
	defer stopPipe()
	stdout := newPipeWatch(opts.IO.Out)

	// The shell reads stdin through a reader that QEMU's exit can end.
	stdin := newCancelableReader(opts.IO.In)
	ed, comp, err := opts.editorOn(stdin, stdout)
	if err != nil {
		return err
	}
	client, qemu, closeLog, err := opts.acceptQEMU(ctx, opts.sideWriter(ed), filepath.Join(dir, "qmp.sock"), log)
	// The socket is removed once QEMU has connected: remove its directory
	// too, now, so that nothing is left behind should qmpsh die of what
	// it cannot catch (SIGKILL, a second SIGTERM).
	os.RemoveAll(dir)
	if err != nil {
		ed.Close()
		return err
	}
	defer closeLog()
	defer client.Disconnect()

	ending := endOnExit(ctx, ed, stdin, qemu, client, stdout.broken)
	ed = ending
	defer ed.Close()
	s := shellSession{client: client, editor: ed, comp: comp, quitsQEMU: true, quitAccepted: ending.awaitExit}
	if g := client.Greeting(); g != nil {
		s.banner = fmt.Sprintf("Connected to QEMU %s (pid %d). Type help for help, Ctrl-D to leave and quit QEMU.",
			g.Version, qemu.pid())
	}
	// The shell leaves the client connected, so that QEMU can be asked
	// to quit afterwards.
	shellErr := opts.shellSession(ctx, s)
	ending.cleanIfEnded()
	err = opts.finish(client, qemu, shellErr)
	if stdout.isBroken() && (err == nil || errors.Is(err, shell.ErrCommandFailed)) {
		return &ExitError{Code: ExitBrokenPipe, quiet: true}
	}
	return err
}

// endSignals is ctx, ended by SIGTERM and SIGHUP (and Ctrl-C, but for a
// person at the shell, where it stops waiting for a reply): they end the
// session as Ctrl-D does, QEMU included. Once one has arrived, the next
// acts as it normally would.
func (o *WrapOptions) endSignals(ctx context.Context) (context.Context, func()) {
	sigs := []os.Signal{syscall.SIGTERM, syscall.SIGHUP}
	if !o.IO.InTTY {
		sigs = append(sigs, os.Interrupt)
	}
	ctx, stop := o.signalContext(ctx, sigs...)
	context.AfterFunc(ctx, stop)
	return ctx, stop
}

// acceptQEMU listens on sock, starts QEMU once it can dial it, and waits
// (up to --timeout, or until Ctrl-C or QEMU's exit) for it to connect.
// traffic is where -v shows the client's traffic. The returned function
// closes the --log file. On failure QEMU has been killed, if it ran, and
// the error explains.
func (o *WrapOptions) acceptQEMU(ctx context.Context, traffic io.Writer, sock string, log *qemuLog) (_ *qmp.Client, _ *qemuProcess, closeLog func(), err error) {
	var qemu *qemuProcess
	var startErr error
	// Ctrl-C ends the wait for QEMU too, as it does accept's.
	ictx, stopInterrupt := o.signalContext(ctx, os.Interrupt)
	defer stopInterrupt()
	actx, cancelAccept := context.WithTimeout(ictx, o.Timeout)
	defer cancelAccept()
	// QEMU is started once the socket it dials is listening.
	listening := func(string) {
		qemu, startErr = startQEMU(o.QEMU, sock, log)
		if startErr != nil {
			cancelAccept()
			return
		}
		fmt.Fprintf(o.IO.ErrOut, "qmpsh: started QEMU (pid %d); its output goes to %s\n", qemu.pid(), log.name)
		// A QEMU that exits without connecting ends the wait at once.
		go func() {
			select {
			case <-qemu.done:
				cancelAccept()
			case <-actx.Done():
			}
		}()
	}
	client, closeLog, err := o.newClient(traffic, qmp.WithListening(listening))
	if err != nil {
		return nil, nil, nil, err
	}
	err = client.Accept(actx, sock)
	cancelAccept()
	if err != nil {
		defer closeLog()
		return nil, nil, nil, wrapStartError(ictx, o, qemu, startErr, log, err)
	}
	stopInterrupt()
	return client, qemu, closeLog, nil
}

// wrapStartError kills QEMU, if it runs, and explains why the shell could
// not start. ctx ends on the signals that stop the wait.
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
	if qemu.exited() {
		return &ExitError{Code: ExitConnection, Err: fmt.Errorf("%s before the QMP session started%s%s",
			qemu.describe(), log.lastMessage(filepath.Base(opts.QEMU[0])), log.where())}
	}
	qemu.kill()
	switch {
	case timedOut:
		return &ExitError{Code: ExitTimeout, Err: fmt.Errorf("QEMU did not connect within %v; killed it%s",
			opts.Timeout, log.where())}
	case ctx.Err() != nil:
		// As accept stopped by a signal: 128+N.
		return &ExitError{Code: signalStatus(ctx), Err: fmt.Errorf("%w; killed it%s",
			interrupted(ctx, context.Canceled, "waiting for QEMU to connect"), log.where())}
	}
	return connectionError("QEMU", fmt.Errorf("%w; killed it%s", err, log.where()))
}

// finish ends QEMU, if it still runs, and decides the exit status.
func (o *WrapOptions) finish(client *qmp.Client, qemu *qemuProcess, shellErr error) error {
	var lost *shell.ConnectionLostError
	if errors.As(shellErr, &lost) || client.Runstate() != protocol.Running {
		// The connection dropped: QEMU is most likely on its way out.
		qemu.waitFor(o.Timeout)
	}
	if qemu.exited() {
		// QEMU exited first: its status is qmpsh's.
		if err := qemu.exitError(); err != nil {
			return err
		}
		if o.IO.InTTY {
			fmt.Fprintln(o.IO.ErrOut, "qmpsh: QEMU exited.")
		}
		if errors.As(shellErr, &lost) {
			return nil // QEMU's exit is what ended the connection
		}
		return shellErr
	}
	qemu.stop(client, o.Timeout, o.IO.ErrOut)
	if shellErr != nil && !errors.Is(shellErr, shell.ErrCommandFailed) {
		return connectionError(fmt.Sprintf("QEMU (pid %d)", qemu.pid()), shellErr)
	}
	return shellErr
}
