package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"

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

	completer *completerRef // set on a terminal
	redial    func(ctx context.Context) error
	quitsQEMU bool // wrap: leaving the shell quits QEMU
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

// errWriter is where the shell's error messages go: through the editor
// on a terminal (so the prompt is redrawn), to stderr otherwise.
func (o *ShellOptions) errWriter(ed shell.Editor) io.Writer {
	if o.IO.InTTY {
		return ed.Writer()
	}
	return o.IO.ErrOut
}

func newConnectCmd(g *GlobalOptions) *cobra.Command {
	opts := &ShellOptions{GlobalOptions: g}
	c := &cobra.Command{
		Use:   "connect [ADDR]",
		Short: "Connect to a QMP server and open the shell",
		Long: `Connect to QEMU's QMP socket (ADDR, else $QMP_SOCKET) and open the shell.

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
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Addr = args[0]
			}
			return connectRun(c.Context(), opts)
		},
	}
	c.Flags().BoolVarP(&opts.HMP, "hmp", "H", false, "send every line to the human monitor (HMP)")
	c.Flags().BoolVar(&opts.Reconnect, "reconnect", false,
		"when QEMU goes away, keep the shell and reconnect (retrying with backoff up to 5s)")
	return c
}

func newAcceptCmd(g *GlobalOptions) *cobra.Command {
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

` + exitStatusHelp,
		Example: `  qmpsh accept /tmp/qmp.sock &
  qemu-system-x86_64 -qmp unix:/tmp/qmp.sock ...`,
		Args: maxOneAddress,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Addr = args[0]
			}
			return acceptRun(c.Context(), opts, c.Flags().Changed("timeout"))
		},
	}
	c.Flags().BoolVarP(&opts.HMP, "hmp", "H", false, "send every line to the human monitor (HMP)")
	return c
}

func maxOneAddress(c *cobra.Command, args []string) error {
	if len(args) > 1 {
		return usageErrorf("%s takes one address, got %d arguments", c.Name(), len(args))
	}
	return nil
}

func connectRun(ctx context.Context, opts *ShellOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := opts.check(); err != nil {
		return err
	}
	addr, err := address(opts.Addr)
	if err != nil {
		return err
	}
	ed, err := opts.editor()
	if err != nil {
		return err
	}
	defer ed.Close()
	client, closeLog, err := opts.newClient(ed.Writer())
	if err != nil {
		return err
	}
	defer closeLog()

	cctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	err = client.Connect(cctx, addr)
	cancel()
	if err != nil {
		return connectionError(addr, err)
	}
	if opts.Reconnect {
		opts.redial = func(ctx context.Context) error {
			cctx, cancel := context.WithTimeout(ctx, opts.Timeout)
			defer cancel()
			return client.Connect(cctx, addr)
		}
	}
	return opts.runShell(ctx, client, ed, addr)
}

func acceptRun(ctx context.Context, opts *ShellOptions, bounded bool) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := opts.check(); err != nil {
		return err
	}
	addr := opts.Addr
	if addr == "" {
		dir, err := privateDir()
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		addr = filepath.Join(dir, "qmp.sock")
	}
	ed, err := opts.editor()
	if err != nil {
		return err
	}
	defer ed.Close()
	announce := func(bound string) {
		// QEMU's own spelling of the address: -qmp unix:PATH or tcp:H:P.
		fmt.Fprintf(opts.IO.ErrOut, "qmpsh: waiting for QEMU; start it with: -qmp %s\n", bound)
	}
	client, closeLog, err := opts.newClient(ed.Writer(), qmp.WithListening(announce))
	if err != nil {
		return err
	}
	defer closeLog()

	// Waiting for a person to start QEMU has no natural bound: Ctrl-C
	// ends it, and --timeout only when given.
	actx, stop := untilStopped(ctx)
	defer stop()
	if bounded {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(actx, opts.Timeout)
		defer cancel()
	}
	if err := client.Accept(actx, addr); err != nil {
		return connectionError(addr, interrupted(actx, err, "waiting for QEMU to connect"))
	}
	stop()
	return opts.runShell(ctx, client, ed, addr)
}

// privateDir makes a directory only this user can enter, under
// $XDG_RUNTIME_DIR when set, else the temporary directory.
func privateDir() (string, error) {
	base := os.Getenv("XDG_RUNTIME_DIR")
	if base == "" {
		base = os.TempDir()
	}
	dir, err := os.MkdirTemp(base, "qmpsh-")
	if err != nil {
		return "", fmt.Errorf("creating a socket directory: %w", err)
	}
	return dir, nil
}

// editor is the line editor for the streams: readline on a terminal, a
// plain line reader otherwise.
func (o *ShellOptions) editor() (shell.Editor, error) {
	if !o.IO.InTTY {
		return shell.NewPipeEditor(o.IO.In, o.IO.Out), nil
	}
	hist := o.HistoryFile
	if hist == "" {
		hist = shell.DefaultHistoryFile()
	}
	comp := &completerRef{}
	ed, err := shell.NewTerminalEditor(shell.TerminalConfig{
		Stdin:       readCloser(o.IO.In),
		Stdout:      o.IO.Out,
		HistoryFile: hist,
		Complete:    comp.complete,
	})
	if err != nil {
		return nil, fmt.Errorf("starting the line editor: %w", err)
	}
	o.completer = comp
	return ed, nil
}

func (o *ShellOptions) runShell(ctx context.Context, client *qmp.Client, ed shell.Editor, addr string) error {
	defer client.Disconnect()
	banner := ""
	if g := client.Greeting(); g != nil {
		banner = fmt.Sprintf("Connected to QEMU %s at %s. Type help for help, Ctrl-D to leave.", g.Version, addr)
	}
	err := o.shellSession(ctx, client, ed, banner)
	if err != nil && !errors.Is(err, shell.ErrCommandFailed) {
		return connectionError(addr, err)
	}
	return err
}

// shellSession runs the shell on a connected client, leaving it
// connected, with banner shown first on a terminal.
func (o *ShellOptions) shellSession(ctx context.Context, client *qmp.Client, ed shell.Editor, banner string) error {
	comp := &shell.Completer{Client: client}
	if o.completer != nil {
		o.completer.c.Store(comp)
	}
	if o.IO.InTTY && banner != "" {
		fmt.Fprintln(ed.Writer(), banner)
	}
	return shell.Run(ctx, shell.Config{
		Client:      client,
		Editor:      ed,
		Err:         o.errWriter(ed),
		Format:      o.format(),
		HMP:         o.HMP,
		Completer:   comp,
		Interactive: o.IO.InTTY,
		Reconnect:   o.redial,
		QuitsQEMU:   o.quitsQEMU,
	})
}
