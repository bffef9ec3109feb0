package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/shell"
)

// ShellOptions are the inputs of qmpsh connect and qmpsh accept.
type ShellOptions struct {
	*GlobalOptions
	Addr string
	HMP  bool
	// Reconnect redials a lost connection (connect only).
	Reconnect bool
	// HistoryFile is where a terminal session keeps its history; "" for
	// the default under $XDG_STATE_HOME.
	HistoryFile string
}

// shellSession is what connect, accept and wrap build at run time and
// hand to the shell: the runtime state that the options do not hold.
type shellSession struct {
	client *qmp.Client // connected and negotiated
	editor shell.Editor
	comp   *completerRef // the terminal editor's; nil on a pipe
	banner string        // shown first on a terminal
	// redial connects client again (connect --reconnect); nil: a lost
	// connection ends the shell.
	redial    func(ctx context.Context) error
	quitsQEMU bool // wrap: leaving the shell quits QEMU
	// quitAccepted is the shell's Config.QuitAccepted (wrap: wait for
	// QEMU's exit).
	quitAccepted func(context.Context)
}

// completerRef lets the editor, created before the connection, complete
// with the client once there is one. readline calls it on its own
// goroutine.
type completerRef struct {
	c atomic.Pointer[shell.Completer]
}

func (r *completerRef) complete(line string) ([]string, int) {
	if c := r.c.Load(); c != nil {
		return c.Complete(line)
	}
	return nil, 0
}

func readCloser(r io.Reader) io.ReadCloser {
	if rc, ok := r.(io.ReadCloser); ok {
		return rc
	}
	return io.NopCloser(r)
}

func newConnectCmd(g *GlobalOptions, runF func(context.Context, *ShellOptions) error) *cobra.Command {
	opts := &ShellOptions{GlobalOptions: g}
	c := &cobra.Command{
		Use:   "connect [ADDR]",
		Short: "Connect to a QMP server and open the shell",
		Long: `Connect to QEMU's QMP socket (ADDR, or -s ADDR as the other commands
take it, else $QMP_SOCKET) and open the shell.

On a terminal: line editing, history, Tab completion, events printed as
they arrive. With standard input not a terminal, each line is run in
order, results and events are printed, and the exit status is 1 if any
command failed, 3 if the connection was lost.

With --reconnect, a lost connection does not end the shell: it says so,
redials (after 0.1s, then doubling up to 5s between attempts; each
attempt bounded by --timeout), negotiates again and says when QEMU is
back. Meanwhile the prompt starts with [disconnected] and commands are
refused, not queued. On a pipe, the exit status is then 3 if any command
was refused or cut off by a lost connection.

` + exitStatusHelp,
		Example: `  qemu-system-x86_64 -qmp unix:/tmp/qmp.sock,server=on,wait=off ... &
  qmpsh connect /tmp/qmp.sock
  echo query-status | qmpsh connect /tmp/qmp.sock`,
		Args: maxOneAddress,
		RunE: withAddress(opts, runF),
	}
	c.Flags().BoolVarP(&opts.HMP, "hmp", "H", false, "send every line to the human monitor (HMP)")
	oneSocketFlag(c.Flags(), &opts.Addr, "the QMP server's `ADDR`, as the argument gives it")
	c.Flags().BoolVar(&opts.Reconnect, "reconnect", false,
		"when QEMU goes away, keep the shell and reconnect (retrying with backoff up to 5s)")
	return c
}

func newAcceptCmd(g *GlobalOptions, runF func(context.Context, *ShellOptions) error) *cobra.Command {
	opts := &ShellOptions{GlobalOptions: g}
	c := &cobra.Command{
		Use:   "accept [ADDR]",
		Short: "Wait for QEMU to connect, then open the shell",
		Long: `Listen on ADDR, print on stderr the QEMU option that dials it
(-qmp unix:PATH), wait for one QEMU to connect, then open the shell.

Without ADDR, a fresh socket in a private directory under $XDG_RUNTIME_DIR
(or the temporary directory) is used and removed on exit. A UNIX socket
is created with mode 0600, whatever the umask, and removed as soon as
QEMU has connected. The wait for QEMU has no time limit unless --timeout
is given; Ctrl-C ends it.

On tls:HOST:PORT qmpsh shows the server certificate of --tls-dir
(server-cert.pem) and requires QEMU's client certificate from its CA;
the line printed for QEMU is then a tls-creds-x509 chardev.

` + exitStatusHelp,
		Example: `  qmpsh accept /tmp/qmp.sock &
  qemu-system-x86_64 -qmp unix:/tmp/qmp.sock ...`,
		Args: maxOneAddress,
		RunE: withAddress(opts, runF),
	}
	c.Flags().BoolVarP(&opts.HMP, "hmp", "H", false, "send every line to the human monitor (HMP)")
	return c
}

// withAddress is a RunE that fills opts.Addr from the optional argument
// and hands opts to runF.
func withAddress(opts *ShellOptions, runF func(context.Context, *ShellOptions) error) func(*cobra.Command, []string) error {
	return func(c *cobra.Command, args []string) error {
		if len(args) == 1 {
			if opts.Addr != "" && targetKey(opts.Addr) != targetKey(args[0]) {
				return usageErrorf("two addresses, %s and -s %s: give one", shellQuote(args[0]), shellQuote(opts.Addr))
			}
			opts.Addr = args[0]
		}
		return runF(c.Context(), opts)
	}
}

func maxOneAddress(c *cobra.Command, args []string) error {
	if len(args) > 1 {
		return usageErrorf("%s takes one address, got %d arguments", c.Name(), len(args))
	}
	return nil
}

func connectRun(ctx context.Context, opts *ShellOptions) error {
	if err := opts.check(); err != nil {
		return err
	}
	addr, err := address(opts.Getenv, opts.Addr, "ADDR")
	if err != nil {
		return err
	}
	ed, comp, err := opts.editor(opts.IO.In)
	if err != nil {
		return err
	}
	defer ed.Close()
	client, closeLog, err := opts.newTargetClient(opts.sideWriter(ed), addr)
	if err != nil {
		return err
	}
	defer closeLog()

	connect := redialer(client, addr, opts.Timeout)
	if err := connect(ctx); err != nil {
		return err
	}
	s := shellSession{client: client, editor: ed, comp: comp}
	if opts.Reconnect {
		s.redial = connect
	}
	return opts.runShell(ctx, s, addr)
}

// redialer connects client to addr within timeout; its failure says why
// in qmpsh's words (connectionError), for the first connection and for
// the shell's notices about reconnecting.
func redialer(client *qmp.Client, addr string, timeout time.Duration) func(context.Context) error {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if err := client.Connect(ctx, addr); err != nil {
			return connectionError(addr, timedOutAfter(err, timeout))
		}
		return nil
	}
}

func acceptRun(ctx context.Context, opts *ShellOptions) error {
	if err := opts.check(); err != nil {
		return err
	}
	addr := opts.Addr
	removeDir := func() {}
	if addr == "" {
		dir, err := privateDir(opts.Getenv)
		if err != nil {
			return err
		}
		removeDir = func() { os.RemoveAll(dir) }
		defer removeDir()
		addr = filepath.Join(dir, "qmp.sock")
	}
	ed, comp, err := opts.editor(opts.IO.In)
	if err != nil {
		return err
	}
	defer ed.Close()
	if err := opts.TLS.checkListen(addr); err != nil {
		return err
	}
	tlsCfg, err := opts.TLS.config()
	if err != nil {
		return err
	}
	var announced string
	announce := func(bound string) {
		if bound == announced { // listening again, after a probe
			return
		}
		announced = bound
		// QEMU's own spelling of the address: -qmp unix:PATH or tcp:H:P,
		// or for TLS a chardev with tls-creds.
		fmt.Fprintf(opts.IO.ErrOut, "qmpsh: waiting for QEMU; start it with: %s\n", qemuDialArgs(bound, opts.TLS.Dir, tlsCfg))
	}
	extra := []qmp.Option{qmp.WithListening(announce)}
	if tlsCfg != nil {
		extra = append(extra, qmp.WithTLS(acceptTLS(tlsCfg)))
	}
	client, closeLog, err := opts.newClient(opts.sideWriter(ed), extra...)
	if err != nil {
		return err
	}
	defer closeLog()

	// Waiting for a person to start QEMU has no natural bound: Ctrl-C
	// ends it, and --timeout only when given.
	actx, stop := opts.signalContext(ctx, stopSignals...)
	defer stop()
	if opts.TimeoutSet {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(actx, opts.Timeout)
		defer cancel()
	}
	for {
		err = client.Accept(actx, addr)
		// Another qmpsh, refusing to take this path over, connected to
		// find out whether it is live, and said so: the wait for QEMU
		// goes on. Any other peer is taken for QEMU, and one that hangs
		// up without a word is a QEMU that failed to start.
		if !errors.Is(err, qmp.ErrProbed) || actx.Err() != nil {
			break
		}
		fmt.Fprintf(opts.IO.ErrOut, "qmpsh: %s: another qmpsh found this socket in use; still waiting for QEMU\n", addr)
	}
	// The socket is removed once QEMU has connected: its directory goes
	// too, now, so that nothing is left behind should qmpsh be killed
	// during the session.
	removeDir()
	if err != nil {
		// Stopped by a signal: 128+N, as a process the signal ended,
		// its socket cleaned up first.
		if xe, ok := interruptedExit(actx, err, "waiting for QEMU to connect").(*ExitError); ok && xe != err {
			return &ExitError{Code: xe.Code, Err: fmt.Errorf("%s: %w", addr, xe.Err)}
		}
		return connectionError(addr, err)
	}
	stop()
	return opts.runShell(ctx, shellSession{client: client, editor: ed, comp: comp}, addr)
}

// privateDir makes a directory only this user can enter, under
// $XDG_RUNTIME_DIR (as getenv reads it) when set, else the temporary
// directory.
func privateDir(getenv func(string) string) (string, error) {
	base := getenv("XDG_RUNTIME_DIR")
	if base == "" {
		base = os.TempDir()
	}
	dir, err := os.MkdirTemp(base, "qmpsh-")
	if err != nil {
		return "", fmt.Errorf("creating a socket directory: %w", err)
	}
	return dir, nil
}

// editor is the line editor for input in and the output stream:
// readline on a terminal, a plain line reader otherwise. On a terminal it
// completes with comp, which is filled in once there is a client.
func (o *ShellOptions) editor(in io.Reader) (ed shell.Editor, comp *completerRef, err error) {
	return o.editorOn(in, o.IO.Out)
}

// editorOn is editor with out for standard output.
func (o *ShellOptions) editorOn(in io.Reader, out io.Writer) (ed shell.Editor, comp *completerRef, err error) {
	if !o.IO.InTTY {
		return shell.NewPipeEditor(in, out), nil, nil
	}
	hist := o.HistoryFile
	if hist == "" {
		hist = shell.DefaultHistoryFile(o.Getenv)
	}
	comp = &completerRef{}
	term, results := out, io.Writer(nil)
	if !o.IO.OutTTY {
		// Typed at a terminal, results to a file or pipe: the prompt
		// and echo go to stderr, for stdout carries results only.
		term, results = o.IO.ErrOut, out
	}
	ed, err = shell.NewTerminalEditor(shell.TerminalConfig{
		Stdin:       readCloser(in),
		Stdout:      term,
		Results:     results,
		HistoryFile: hist,
		Complete:    comp.complete,
		Interrupts:  o.interrupts(),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("starting the line editor: %w", err)
	}
	return ed, comp, nil
}

// sideWriter is where the shell's errors, notices and -v traffic go:
// through the editor when a person reads the terminal, so that the
// prompt is redrawn beneath them; to stderr otherwise, for standard
// output that is not a terminal carries results only.
func (o *ShellOptions) sideWriter(ed shell.Editor) io.Writer {
	if ed.Interactive() && o.IO.OutTTY {
		return ed.Writer()
	}
	if t, ok := ed.(interface{ Terminal() io.Writer }); ok && ed.Interactive() {
		// Typed at a terminal, results to a file: through the editor
		// still, on stderr, which redraws the line being typed.
		return t.Terminal()
	}
	return o.IO.ErrOut
}

// runShell runs the shell, then disconnects.
func (o *ShellOptions) runShell(ctx context.Context, s shellSession, addr string) error {
	defer s.client.Disconnect()
	if g := s.client.Greeting(); g != nil {
		s.banner = fmt.Sprintf("Connected to QEMU %s at %s. Type help for help, Ctrl-D to leave.", g.Version, addr)
	}
	err := o.shellSession(ctx, s)
	if err != nil && !errors.Is(err, shell.ErrCommandFailed) {
		return connectionError(addr, err)
	}
	return err
}

// shellSession runs the shell on a connected client, leaving it
// connected.
func (o *ShellOptions) shellSession(ctx context.Context, s shellSession) error {
	comp := &shell.Completer{Client: s.client, HMP: o.HMP}
	if s.comp != nil {
		s.comp.c.Store(comp)
	}
	if s.editor.Interactive() && s.banner != "" {
		// Printable: the banner quotes the greeting's version.
		fmt.Fprintln(o.sideWriter(s.editor), shell.Printable(s.banner))
	}
	return shell.Run(ctx, shell.Config{
		Client:       s.client,
		Editor:       s.editor,
		Err:          o.sideWriter(s.editor),
		Format:       o.format(),
		HMP:          o.HMP,
		Completer:    comp,
		Reconnect:    s.redial,
		QuitsQEMU:    s.quitsQEMU,
		QuitAccepted: s.quitAccepted,
		JSONOut:      !o.IO.OutTTY,
		Page:         o.pager(),
	})
}
