package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/qmpsh/qmpsh/pkg/ga"
	"github.com/qmpsh/qmpsh/pkg/protocol"
	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/shell"
)

// gaAddressHelp says what a guest agent address is, for every ga command.
const gaAddressHelp = `The agent's address (-s ADDR, else $QGA_SOCKET) is the UNIX socket QEMU
gives the guest's agent channel (a path or unix:PATH; see qmpsh ga --help),
tcp:HOST:PORT, tls:HOST:PORT for a channel QEMU serves with tls-creds
(with the --tls-* flags, as for QMP), or vsock:CID:PORT for an agent
listening on vsock (qemu-ga -m vsock-listen).`

// gaTimeoutHelp says what --timeout bounds for the ga commands.
const gaTimeoutHelp = `--timeout bounds connecting (the agent has no greeting: qmpsh
synchronises with guest-sync-delimited) and each request's wait for its
reply; an agent that does not answer (a guest still booting) is exit
status 4.`

// GAOptions are the inputs the ga commands share.
type GAOptions struct {
	*GlobalOptions
	Addr string // -s
}

func newGACmd(g *GlobalOptions, sub ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   "ga",
		Short: "Talk to the QEMU guest agent: a shell, commands, run programs, copy files",
		Long: `Talk to the QEMU guest agent (qemu-ga) running in a guest, over its
virtio-serial channel's UNIX socket on the host, or vsock:

  qemu-system-x86_64 ... \
    -chardev socket,path=/tmp/qga.sock,server=on,wait=off,id=qga0 \
    -device virtio-serial \
    -device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0

` + gaAddressHelp + `

` + gaTimeoutHelp,
		Example: `  qmpsh ga connect /tmp/qga.sock
  qmpsh ga exec -s /tmp/qga.sock guest-get-osinfo
  qmpsh ga run -s /tmp/qga.sock -- uname -a
  qmpsh ga cp -s /tmp/qga.sock ./backup.sh :/root/backup.sh`,
		// A missing or unknown subcommand is a usage error, as for job.
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown ga command %q (use connect, exec, run or cp)", args[0])
			}
			return usageErrorf("ga needs a command: connect, exec, run or cp")
		},
		RunE: func(c *cobra.Command, args []string) error { return nil },
	}
	c.AddCommand(sub...)
	return c
}

// gaCommands builds ga and its subcommands on g.
func gaCommands(g *GlobalOptions) *cobra.Command {
	return newGACmd(g,
		newGAExecCmd(g, gaExecRun),
		newGARunCmd(g, gaRunRun),
		newGACpCmd(g, gaCpRun),
		newGAConnectCmd(g, gaConnectRun),
	)
}

func (o *GAOptions) addressFlag(c *cobra.Command) {
	// Once, as for the QMP commands; compared as written, since an
	// agent's address may be vsock:CID:PORT.
	c.Flags().VarP(&onceValue{p: &o.Addr}, "socket", "s", "guest agent `ADDR` (default $QGA_SOCKET)")
}

// address is -s, else $QGA_SOCKET. A malformed vsock: address is a usage
// error, as a malformed tcp: one is.
func (o *GAOptions) address() (string, error) {
	addr, where := o.Addr, "-s "
	if addr == "" {
		addr, where = o.Getenv("QGA_SOCKET"), "QGA_SOCKET="
		if addr == "" {
			return "", usageErrorf("no guest agent address: give -s ADDR or set QGA_SOCKET")
		}
		if err := checkAddress(where, addr); err != nil {
			return "", err
		}
	}
	if err := ga.CheckVsockAddress(addr); err != nil {
		return "", &ExitError{Code: ExitUsage, Syntax: true, Err: fmt.Errorf("%s%s: %v", where, shellQuote(addr), err)}
	}
	return addr, nil
}

// newGAClient builds a guest agent client whose traffic goes to verbose
// and to the log file as the flags ask, each request bounded by
// --timeout. The returned function closes the log file.
func (o *GlobalOptions) newGAClient(verbose io.Writer) (*ga.Client, func(), error) {
	t, closeLog, err := o.openTraffic(verbose)
	if err != nil {
		return nil, nil, err
	}
	opts := []ga.Option{
		ga.WithLogger(t.logger(o.IO.ErrOut)),
		ga.WithCallTimeout(o.Timeout),
	}
	if t.on() {
		opts = append(opts, ga.WithTrace(func(dir protocol.Direction, msg []byte) {
			// The sync's 0xFF bytes are no text: show them as \xff.
			if bytes.IndexByte(msg, 0xff) >= 0 {
				msg = bytes.ReplaceAll(msg, []byte{0xff}, []byte(`\xff`))
			}
			// Long replies (file data, guest-info) are shortened on the
			// display, as qmpsh's own calls are; the log keeps them.
			t.trace(dir, msg, true)
		}))
	}
	tlsCfg, err := o.TLS.config()
	if err != nil {
		closeLog()
		return nil, nil, err
	}
	if tlsCfg != nil {
		opts = append(opts, ga.WithTLS(tlsCfg))
	}
	newClient := o.NewGAClient
	if newClient == nil {
		newClient = ga.NewClient
	}
	return newClient(opts...), closeLog, nil
}

// start is every ga command's first step: the flags checked and the
// agent's address found, before anything is sent. A nil ctx (a command
// run outside cobra, in tests) is taken as context.Background.
func (o *GAOptions) start(ctx context.Context) (context.Context, string, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := o.check(); err != nil {
		return ctx, "", err
	}
	addr, err := o.address()
	return ctx, addr, err
}

// dial builds a client (its traffic display on verbose) and connects it
// to addr within --timeout. The returned function disconnects the client
// and closes the traffic log; it is nil when err is not.
func (o *GAOptions) dial(ctx context.Context, verbose io.Writer, addr string) (*ga.Client, func(), error) {
	client, closeLog, err := o.newGAClient(verbose)
	if err != nil {
		return nil, nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if err := client.Connect(cctx, addr); err != nil {
		closeLog()
		return nil, nil, gaError(addr, tlsRefused(addr, timedOutAfter(err, o.Timeout)))
	}
	return client, func() { client.Disconnect(); closeLog() }, nil
}

// dialStoppable is dial for a command that a stop signal (Ctrl-C) may
// interrupt while it works: the returned context ends on one (see
// interruptedExit), and the returned function also stops listening for
// them.
func (o *GAOptions) dialStoppable(ctx context.Context, addr string) (context.Context, *ga.Client, func(), error) {
	ctx, stop := o.signalContext(ctx, stopSignals...)
	client, hangUp, err := o.dial(ctx, o.IO.ErrOut, addr)
	if err != nil {
		err = interruptedExit(ctx, err, "connecting")
		stop()
		return ctx, nil, nil, err
	}
	return ctx, client, func() { hangUp(); stop() }, nil
}

// tlsRefused adds to err, a failure to synchronise with an agent at a
// tls: address after the TLS handshake went through, why that may be
// (see tlsRefusedHint); other errors are returned as they are.
func tlsRefused(addr string, err error) error {
	var na *ga.NoAnswerError
	var ce *protocol.ConnectError
	if !isTLSAddress(addr) || errors.As(err, &na) || errors.As(err, &ce) || errors.Is(err, ga.ErrMonitor) {
		return err
	}
	return &wrapped{err.Error() + "; " + tlsRefusedHint, err}
}

// gaError makes a failure to reach the agent a connection error that
// names the address; an error reply, or an error that already has its
// exit status, is returned as it is. An agent that did not answer says so
// in its own words (exit status 4 all the same).
func gaError(addr string, err error) error {
	var ee *qmp.ExecuteError
	var xe *ExitError
	var na *ga.NoAnswerError
	var tl *ga.RequestTooLargeError
	switch {
	case err == nil, errors.As(err, &ee), errors.As(err, &xe):
		return err
	case errors.As(err, &tl): // not sent: no connection problem
		return &ExitError{Code: ExitQMPError, Err: err}
	case errors.As(err, &na):
		return &connectionFailure{&wrapped{addr + ": " + na.Error(), err}}
	case errors.Is(err, ga.ErrMonitor):
		return &connectionFailure{&wrapped{addr + ": " + err.Error() +
			": run qmpsh exec or connect on it, or give the socket of the guest agent's channel (org.qemu.guest_agent.0)", err}}
	}
	return connectionErrorHint(addr, err, gaBusyHint)
}

// GAExecOptions are the inputs of qmpsh ga exec.
type GAExecOptions struct {
	GAOptions
	Args []string // COMMAND [key=value ...], or one raw JSON message
}

func newGAExecCmd(g *GlobalOptions, runF func(context.Context, *GAExecOptions) error) *cobra.Command {
	opts := &GAExecOptions{GAOptions: GAOptions{GlobalOptions: g}}
	c := &cobra.Command{
		Use:   "exec [-s ADDR] COMMAND [key=value ...] | exec [-s ADDR] JSON",
		Short: "Run one guest agent command and print its result as JSON",
		Long: `Connect to the guest agent, synchronise, run one command, print its
"return" value as JSON on stdout, and exit. Arguments use the shell's
syntax (key=value, dotted keys, JSON values); a single argument starting
with { is sent as a raw message. An error reply prints "Class:
description" on stderr (exit status 1).

Commands that never reply on success (guest-shutdown, guest-suspend-*)
print nothing and exit 0 once sent.

` + gaAddressHelp + `

` + gaTimeoutHelp + `

` + exitStatusHelp,
		Example: `  qmpsh ga exec -s /tmp/qga.sock guest-get-osinfo
  qmpsh ga exec -s /tmp/qga.sock guest-get-fsinfo | jq -r '.[].mountpoint'
  qmpsh ga exec -s /tmp/qga.sock guest-fsfreeze-freeze`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("ga exec needs a command")
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			opts.Args = args
			return runF(c.Context(), opts)
		},
	}
	opts.addressFlag(c)
	return c
}

func gaExecRun(ctx context.Context, opts *GAExecOptions) error {
	ctx, addr, err := opts.start(ctx)
	if err != nil {
		return err
	}
	// Parse everything before connecting: a syntax error sends nothing.
	in, err := shell.ParseArgs(opts.Args)
	if err != nil {
		return syntaxError(err)
	}
	cmd, err := in.Command(nil) // the agent has no schema to type values by
	if err != nil {
		return syntaxError(err)
	}
	client, hangUp, err := opts.dial(ctx, opts.IO.ErrOut, addr)
	if err != nil {
		return err
	}
	defer hangUp()
	ret, err := gaSend(ctx, client, cmd)
	if err != nil {
		return gaError(addr, err)
	}
	if ret != nil {
		opts.IO.Out.Write(opts.format().JSON(ret))
	}
	return nil
}

// gaSend sends cmd and returns its "return" value (nil for a command
// that does not reply).
func gaSend(ctx context.Context, client *ga.Client, cmd *shell.Command) (json.RawMessage, error) {
	if cmd.Raw == nil {
		var args any
		if cmd.Args != nil {
			args = cmd.Args
		}
		return client.Exec(ctx, cmd.Name, args)
	}
	reply, err := client.Raw(ctx, cmd.Raw)
	if err != nil || reply == nil {
		return nil, err
	}
	var r struct {
		Return json.RawMessage `json:"return"`
	}
	if json.Unmarshal(reply, &r) != nil || r.Return == nil {
		return reply, nil
	}
	return r.Return, nil
}
