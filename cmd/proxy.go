package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/qmpsh/qmpsh/pkg/protocol"
	"github.com/qmpsh/qmpsh/pkg/proxy"
	"github.com/qmpsh/qmpsh/pkg/shell"
)

// ProxyOptions are the inputs of qmpsh proxy.
type ProxyOptions struct {
	*GlobalOptions
	Socket    string
	Listen    []string
	ReadOnly  bool
	Allow     []string
	Deny      []string
	Reconnect bool
	QueueLen  int
	// InsecureListen lets --listen take plain TCP, which anyone who
	// can reach the port may use.
	InsecureListen bool
	// Listening, if set, is told the listening addresses (tests).
	Listening func(addrs []string)
}

func newProxyCmd(g *GlobalOptions, runF func(context.Context, *ProxyOptions) error) *cobra.Command {
	opts := &ProxyOptions{GlobalOptions: g}
	c := &cobra.Command{
		Use:   "proxy [-s QEMU-ADDR] --listen ADDR [--listen ADDR]... [--read-only] [--allow GLOB]... [--deny GLOB]... [--reconnect]",
		Short: "Serve many QMP clients on one QEMU monitor",
		Long: `Connect to QEMU's QMP socket (-s, else $QMP_SOCKET) and serve any number
of QMP clients at once on each --listen address (a UNIX socket path or
tls:HOST:PORT; a UNIX socket is created mode 0600 and removed on exit).
On tls:HOST:PORT clients must show a certificate from the CA of
--tls-dir (or --tls-ca); plain TCP (host:port) takes anyone who can
reach the port, so it needs --insecure-listen.

Each client sees a QMP server: QEMU's greeting, its own capabilities
negotiation, its own ids on its replies, and every event QEMU sends, in
QEMU's order. A client that falls behind by --queue messages is
disconnected, so that it never delays QEMU or the other clients.
Descriptors sent with getfd or add-fd go to QEMU with the command.

Policy, on command names: --deny GLOB refuses matching commands;
when any --allow GLOB is given only matching commands pass; --read-only
lets through only commands that read (query-*, qom-get, qom-list,
qom-list-types, qom-list-properties, device-list-properties, and
qmp_capabilities; not human-monitor-command). A refused command gets a GenericError reply and
never reaches QEMU. A proxy is a QMP server like QEMU, so a proxy with
another policy can serve on top of the first (see the examples).

When QEMU goes away every client is disconnected and the proxy exits 3;
with --reconnect it keeps listening, redials (after 0.1s, doubling up to
5s) and serves clients again once QEMU is back. SIGINT and SIGTERM end
the proxy with status 0, leaving QEMU running. -v shows every client's
traffic, labelled with the client.

` + exitStatusHelp,
		Example: `  qmpsh proxy -s /run/vm1/qmp.sock --listen /run/vm1/proxy.sock &
  qmpsh connect /run/vm1/proxy.sock
  # a read-only socket for monitoring, on top of the first proxy
  qmpsh proxy -s /run/vm1/proxy.sock --listen /run/vm1/ro.sock --read-only &`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("proxy takes no arguments, got %q (use -s for QEMU's address, --listen for the proxy's)", args[0])
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			return runF(c.Context(), opts)
		},
	}
	f := c.Flags()
	oneSocketFlag(f, &opts.Socket, "QEMU's QMP `ADDR` (default $QMP_SOCKET)")
	f.StringArrayVar(&opts.Listen, "listen", nil, "serve clients on `ADDR` (repeatable)")
	f.BoolVar(&opts.ReadOnly, "read-only", false, "let only commands that read through")
	f.StringArrayVar(&opts.Allow, "allow", nil, "let only commands matching `GLOB` through (repeatable)")
	f.StringArrayVar(&opts.Deny, "deny", nil, "refuse commands matching `GLOB` (repeatable)")
	f.BoolVar(&opts.Reconnect, "reconnect", false, "when QEMU goes away, keep listening and reconnect")
	f.IntVar(&opts.QueueLen, "queue", proxy.DefaultQueueLen, "disconnect a client that falls `N` messages (or 64 MiB of them) behind")
	f.BoolVar(&opts.InsecureListen, "insecure-listen", false, "let --listen take plain TCP, open to anyone who can reach the port")
	return c
}

func proxyRun(ctx context.Context, opts *ProxyOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := opts.check(); err != nil {
		return err
	}
	upstream, err := address(opts.Getenv, opts.Socket, "-s ADDR")
	if err != nil {
		return err
	}
	if len(opts.Listen) == 0 {
		return usageErrorf("proxy needs at least one --listen address")
	}
	seen := map[string]string{} // the addresses given, by where they listen
	for _, l := range opts.Listen {
		a, err := protocol.ParseAddress(l)
		if err != nil {
			return usageErrorf("--listen: %v", err)
		}
		where := a.Network + " " + a.Addr
		if a.Network == "unix" {
			abs, _ := filepath.Abs(a.Addr) // cleaned too
			where = a.Network + " " + abs
		}
		if first, ok := seen[where]; ok && !strings.HasSuffix(a.Addr, ":0") { // port 0: a port each
			return usageErrorf("--listen %s is where --listen %s listens already: give each address once", l, first)
		}
		seen[where] = l
		if err := opts.TLS.checkListen(l); err != nil {
			return err
		}
		if a.Network == "tcp" && !a.TLS {
			// A QMP monitor runs any command, migrate to a file and
			// human-monitor-command included: on TCP only TLS with
			// client certificates keeps strangers out.
			if !opts.InsecureListen {
				return usageErrorf("--listen %s: plain TCP lets anyone who can reach the port control the VM; "+
					"listen on tls:HOST:PORT with --tls-dir (clients must show a certificate from its CA), "+
					"or give --insecure-listen", l)
			}
			fmt.Fprintf(opts.IO.ErrOut, "qmpsh: warning: --insecure-listen: %s takes clients without TLS or authentication; anyone who can reach it controls the VM\n", l)
		}
	}
	tlsCfg, err := opts.TLS.config()
	if err != nil {
		return err
	}
	if opts.QueueLen < 1 {
		return usageErrorf("--queue must be at least 1, not %d", opts.QueueLen)
	}
	policy := proxy.Policy{Allow: opts.Allow, Deny: opts.Deny, ReadOnly: opts.ReadOnly}
	if err := policy.Check(); err != nil {
		return usageErrorf("%v", err)
	}

	out := &proxyOutput{w: opts.IO.ErrOut}
	logs := &lineHandler{mu: &out.mu, w: opts.IO.ErrOut, level: slog.LevelWarn}
	if opts.Verbose {
		out.verbose = opts.IO.ErrOut
		logs.level = slog.LevelInfo
	}
	if opts.LogFile != "" {
		f, err := os.OpenFile(opts.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return &ExitError{Code: ExitUsage, Err: fmt.Errorf("--log: %w", err)}
		}
		defer f.Close()
		out.log = f
	}
	cfg := proxy.Config{
		Upstream:       upstream,
		Listen:         opts.Listen,
		TLS:            tlsCfg,
		Policy:         policy,
		Reconnect:      opts.Reconnect,
		MinDelay:       shell.ReconnectMinDelay,
		MaxDelay:       shell.ReconnectMaxDelay,
		ConnectTimeout: opts.Timeout,
		QueueLen:       opts.QueueLen,
		Logger:         slog.New(logs),
		Listening: func(addrs []string) {
			out.printf("qmpsh: proxy for %s listening on %s\n", upstream, strings.Join(addrs, ", "))
			if opts.Listening != nil {
				opts.Listening(addrs)
			}
		},
	}
	if out.verbose != nil || out.log != nil {
		cfg.Trace = out.trace
		cfg.Left = out.left
	}
	p, err := proxy.New(cfg)
	if err != nil {
		return usageErrorf("%v", err)
	}
	// Ending on a signal is the normal way to stop a proxy: clean up
	// the sockets and exit 0.
	sctx, stop := opts.signalContext(ctx, stopSignals...)
	defer stop()
	err = p.Run(sctx)
	var ue *proxy.UpstreamError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ue) && ue.Lost:
		return upstreamLost(upstream, ue.Err)
	case errors.As(err, &ue):
		var ge *proxy.GreetingError
		if errors.As(ue.Err, &ge) && errors.Is(err, context.DeadlineExceeded) {
			return &ExitError{Code: ExitTimeout, Err: fmt.Errorf("%s: timed out after %v waiting for the QMP greeting; %s", upstream, opts.Timeout, proxyBusyHint)}
		}
		return connectionErrorHint(upstream, ue.Err, proxyBusyHint)
	}
	var pe *protocol.SocketPathError
	if errors.As(err, &pe) {
		return &ExitError{Code: ExitUsage, Err: fmt.Errorf("cannot listen: %w", err), Syntax: true}
	}
	if ne := (*net.OpError)(nil); errors.As(err, &ne) && ne.Op == "listen" && ne.Addr != nil {
		// In accept's words: the address, and why, without Go's.
		return &ExitError{Code: ExitUsage, Err: fmt.Errorf("cannot listen on %s: %v", ne.Addr, ne.Err), Syntax: true}
	}
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf("cannot listen: %w", err)}
}

// proxyOutput is the proxy's stderr and --log: its notices, and with -v
// or --log the traffic of every client, each line saying whose. Its log
// lines are a lineHandler's, under the same lock.
type proxyOutput struct {
	mu      sync.Mutex
	w       io.Writer
	verbose io.Writer // nil unless -v
	log     io.Writer // nil unless --log
	line    []byte
	redact  redactor // secrets never reach either in clear
}

func (o *proxyOutput) printf(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.w, format, args...)
}

// trace shows "WHO --> msg" for what the proxy sent WHO, "WHO <-- msg"
// for what it received from WHO: as qmpsh -v does, from the proxy's side.
func (o *proxyOutput) trace(who string, dir protocol.Direction, msg []byte) {
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	msg = o.redact.message(who, msg)
	o.line = append(append(append(append(o.line[:0], who...), ' '), dir.String()...), ' ')
	o.line = append(append(o.line, msg...), '\n')
	if o.verbose != nil {
		// Printable: a peer's line that is not JSON may carry terminal
		// escapes; the --log file keeps it whole.
		io.WriteString(o.verbose, shell.Printable(string(o.line)))
	}
	if o.log != nil {
		logLine(o.log, now, o.line)
	}
	if cap(o.line) > 64<<10 {
		o.line = nil
	}
}

// left forgets the replies the redactor awaited for a client that left:
// they will never come, and names are not reused.
func (o *proxyOutput) left(who string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.redact.forget(who)
}

// upstreamLost is the error of a proxy whose connection to QEMU ended
// for cause.
func upstreamLost(upstream string, cause error) error {
	var tl *protocol.MessageTooLongError
	if errors.As(cause, &tl) {
		return &connectionFailure{fmt.Errorf("QEMU at %s sent a message over the proxy's %d MiB limit; the proxy dropped the connection and its clients", upstream, tl.Limit>>20)}
	}
	return &connectionFailure{fmt.Errorf("QEMU at %s went away (the proxy's clients were disconnected)", upstream)}
}
