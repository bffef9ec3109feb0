package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"sync"

	"github.com/spf13/cobra"

	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/shell"
)

// EventsOptions are the inputs of qmpsh events.
type EventsOptions struct {
	*GlobalOptions
	Sockets  []string
	Names    []string
	Match    []string // KEY=VALUE
	Count    int
	Parallel int

	match qmp.Match // Match, parsed
}

func newEventsCmd(g *GlobalOptions, runF func(context.Context, *EventsOptions) error) *cobra.Command {
	opts := &EventsOptions{GlobalOptions: g}
	c := &cobra.Command{
		Use:   "events [-s ADDR]... [--name NAME]... [--count N] [--timeout D]",
		Short: "Print QEMU's events as JSON lines",
		Long: `Connect and print each event as one compact JSON line, as QEMU sent it
("event", "data", "timestamp"), flushed line by line, for jq and log
shippers. --name keeps only the events named (repeat it for several);
a name QEMU's schema does not know is a usage error (exit status 2).
--match KEY=VALUE keeps only events whose data has VALUE at KEY, a dotted
path into "data" (repeat it: all must match); VALUE is typed as in the
shell's line syntax, and a number or boolean also matches its text as a
string.

Without --count or --timeout, events are printed until the connection
ends (exit status 3) or qmpsh is interrupted. --count N exits 0 after N
events; --timeout bounds the whole run (connecting and waiting) and
running out is exit status 4.

With -s more than once or a glob, events from every target are printed
as they come, each line with "target" added; --count applies to each
target, and a target that cannot be reached prints an error line,
{"target": ADDR, "error": {...}}. The exit status is the worst of the
targets'.

` + exitStatusHelp,
		Example: `  qmpsh events -s /tmp/qmp.sock
  qmpsh events -s /tmp/qmp.sock --name STOP --name RESUME --count 2
  qmpsh events -s /tmp/qmp.sock --name JOB_STATUS_CHANGE --match id=job0
  qmpsh events -s '/run/vms/*.qmp' --name SHUTDOWN | jq -r .target`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("events takes no arguments, got %q (use -s for the address)", args[0])
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			return runF(c.Context(), opts)
		},
	}
	f := c.Flags()
	f.StringArrayVarP(&opts.Sockets, "socket", "s", nil, "QMP server `ADDR` (default $QMP_SOCKET); repeat it or use a glob for many")
	f.StringArrayVar(&opts.Names, "name", nil, "print only events named `NAME` (repeatable)")
	f.StringArrayVar(&opts.Match, "match", nil, "print only events whose data has `KEY=VALUE` (dotted KEY, repeatable)")
	f.IntVar(&opts.Count, "count", 0, "exit after `N` events (per target; 0, the default: no limit)")
	f.IntVar(&opts.Parallel, "parallel", DefaultParallel, "with many targets, connect to at most `N` at once")
	c.ValidArgsFunction = cobra.NoFileCompletions
	c.RegisterFlagCompletionFunc("name", eventNames(g, &opts.Sockets))
	return c
}

func eventsRun(ctx context.Context, opts *EventsOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := opts.check(); err != nil {
		return err
	}
	if opts.Count < 0 {
		return usageErrorf("--count must not be negative, not %d", opts.Count)
	}
	if opts.Parallel < 1 {
		return usageErrorf("--parallel must be at least 1, not %d", opts.Parallel)
	}
	match, err := parseMatch(opts.Match)
	if err != nil {
		return err
	}
	opts.match = match
	addrs, fanout, err := targets(opts.Getenv, opts.Sockets)
	if err != nil {
		return err
	}
	if opts.TimeoutSet { // it bounds the whole run
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	var mu sync.Mutex // one line at a time on stdout
	print := func(line []byte) {
		mu.Lock()
		defer mu.Unlock()
		opts.IO.Out.Write(line)
	}
	if !fanout {
		return opts.stream(ctx, addrs[0], func(ev qmp.Event) {
			line, _ := ev.MarshalJSON() // the data was valid JSON when read
			print(append(shell.ValidUTF8(line), '\n'))
		})
	}
	// A streaming target prints its events as they come, so its outcome
	// line is only for failures; a target that got its --count prints
	// nothing more. Streaming goroutines must all run at once, so
	// --parallel bounds connecting, not streaming.
	connecting := make(chan struct{}, opts.Parallel)
	var (
		wg    sync.WaitGroup
		worst int
		wmu   sync.Mutex
	)
	for _, addr := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			connecting <- struct{}{}
			err := opts.streamConnected(ctx, addr, func() { <-connecting }, func(ev qmp.Event) {
				line, _ := json.Marshal(struct {
					Target string    `json:"target"`
					Event  qmp.Event `json:"event"`
				}{addr, ev})
				print(append(shell.ValidUTF8(line), '\n'))
			})
			if err == nil {
				return
			}
			o := failed(err)
			line, _ := json.Marshal(struct {
				Target string       `json:"target"`
				Error  *errorObject `json:"error"`
			}{addr, o.Error})
			print(append(line, '\n'))
			wmu.Lock()
			worst = max(worst, o.code)
			wmu.Unlock()
		}()
	}
	wg.Wait()
	if worst != ExitOK {
		return &ExitError{Code: worst, Err: errFannedOut, quiet: true}
	}
	return nil
}

func (opts *EventsOptions) stream(ctx context.Context, addr string, emit func(qmp.Event)) error {
	return opts.streamConnected(ctx, addr, func() {}, emit)
}

// streamConnected connects to addr, calls connected once the connection
// is up or has failed, and emits events until --count, the context's end
// or the connection's.
func (opts *EventsOptions) streamConnected(ctx context.Context, addr string, connected func(), emit func(qmp.Event)) error {
	client, closeLog, err := opts.newTargetClient(opts.IO.ErrOut, addr)
	if err != nil {
		connected()
		return err
	}
	defer closeLog()
	// Listening before connecting: no event between negotiation and
	// the first wait is missed.
	l, err := client.ListenMatch(opts.match, opts.Names...)
	if err != nil {
		connected()
		return err
	}
	defer l.Close()
	cctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	err = client.Connect(cctx, addr)
	cancel()
	connected()
	if err != nil {
		// A Connect that timed out says what it was waiting for (the
		// greeting of a busy monitor...); with --timeout the run's own
		// deadline is the same one, and must not hide that.
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = ctx.Err()
		}
		return connectionError(addr, timedOutAfter(err, opts.Timeout))
	}
	defer client.Disconnect()
	// The stream may have no end, but asking for the schema has one.
	sctx, scancel := context.WithTimeout(ctx, opts.Timeout)
	_, err = checkEventNames(sctx, client, addr, opts.Names)
	scancel()
	if err != nil {
		return err
	}
	for n := 0; opts.Count == 0 || n < opts.Count; n++ {
		ev, err := waitEvent(ctx, client, l, "events")
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return nil // interrupted: not a failure
			}
			return connectionError(addr, timedOutAfter(err, opts.Timeout)) // --timeout bounds the run
		}
		emit(ev)
	}
	return nil
}
