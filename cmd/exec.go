package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/qmpsh/qmpsh/pkg/qapi"
	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/shell"
)

// ExecOptions are the inputs of qmpsh exec.
type ExecOptions struct {
	*GlobalOptions
	Sockets   []string // -s, repeatable, globs allowed
	Args      []string // COMMAND [key=value ...], or one raw JSON message
	WaitEvent string
	Match     []string // KEY=VALUE, with WaitEvent
	WaitJob   bool
	// CancelOnInterrupt, with WaitJob: Ctrl-C cancels the job.
	CancelOnInterrupt bool
	WaitTimeout       time.Duration // 0: --timeout's
	Parallel          int

	match qmp.Match // Match, parsed
}

func newExecCmd(g *GlobalOptions, runF func(context.Context, *ExecOptions) error) *cobra.Command {
	opts := &ExecOptions{GlobalOptions: g}
	c := &cobra.Command{
		Use:   "exec [-s ADDR]... [--wait-event NAME] (COMMAND [key=value ...] | JSON)",
		Short: "Run one QMP command and print its result as JSON",
		Long: `Connect, negotiate, run one command, print its "return" value as JSON on
stdout, and exit. Arguments use the shell's syntax (key=value, dotted keys,
JSON values), typed by QEMU's schema when a value is ambiguous: the same
words give the same JSON as in the shell, quotes inside an argument
included ('command-line="info kvm"' sends "info kvm"). A single argument
with blanks is a whole line, as typed in the shell; a single argument
starting with { is sent as a raw QMP message. An error reply
prints "Class: description" on stderr.

With --wait-event NAME, exec listens for the event before sending the
command (so an event QEMU emits at once is not missed), prints the return
value, then waits for the event and prints it as QEMU sent it (JSON with
"event", "data" and "timestamp"). --wait-timeout bounds the wait (default:
--timeout); running out is exit status 4. NAME is checked against QEMU's
schema first: an event QEMU does not know is a usage error, and nothing
is sent. --match KEY=VALUE waits for an event whose data has VALUE at
KEY, a dotted path into "data" (repeat it: all must match; VALUE typed
as in the shell's line syntax, a number or boolean also matching its
text as a string).

With --wait-job, exec starts a job with the command (blockdev-backup,
blockdev-mirror, blockdev-create...) and waits for it as 'qmpsh job
wait' does, following the job named by the command's job-id (else its
id, else its device): exit status 1 with the job's error if it fails.
Jobs take long, so that wait has no limit unless --wait-timeout (or
--timeout) is given; Ctrl-C stops it and leaves the job running (exit
status 130), unless --cancel-on-interrupt is given: then the job is
cancelled (job-cancel) and waited for.

Give -s more than once, or a glob ('/run/vms/*.qmp', quoted), to run the
command on many QMP servers at once (at most --parallel at a time). Each
target then prints one JSON line, {"target": ADDR, "return": ...} (with
"event" under --wait-event), or {"target": ADDR, "error": {"class": ...,
"desc": ...}}, where the class is QEMU's, or ConnectionError, Timeout or
UsageError. The exit status is the worst of the targets'.

` + exitStatusHelp,
		Example: `  qmpsh exec -s /tmp/qmp.sock query-status
  QMP_SOCKET=/tmp/qmp.sock qmpsh exec qom-get path=/machine property=type
  qmpsh exec -s localhost:4444 '{"execute": "query-version"}'
  qmpsh exec -s /tmp/qmp.sock --wait-event SHUTDOWN system_powerdown
  qmpsh exec --wait-event BLOCK_JOB_COMPLETED --match device=b0 blockdev-backup job-id=b0 device=src target=dst sync=full
  qmpsh exec --wait-job blockdev-backup job-id=b0 device=src target=dst sync=full
  qmpsh exec -s '/run/vms/*.qmp' query-status | jq -r '[.target, .return.status] | @tsv'`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("exec needs a command")
			}
			if c.Flags().Changed("wait-event") && opts.WaitEvent == "" {
				return usageErrorf("--wait-event needs an event name, such as STOP")
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			opts.Args = args
			return runF(c.Context(), opts)
		},
	}
	f := c.Flags()
	f.StringArrayVarP(&opts.Sockets, "socket", "s", nil, "QMP server `ADDR` (default $QMP_SOCKET); repeat it or use a glob for many")
	f.StringVar(&opts.WaitEvent, "wait-event", "", "listen for event `NAME` before sending the command, then wait for it and print it")
	f.StringArrayVar(&opts.Match, "match", nil, "with --wait-event, wait for an event whose data has `KEY=VALUE` (dotted KEY, repeatable)")
	f.BoolVar(&opts.WaitJob, "wait-job", false, "the command starts a job: wait for it to end, as 'qmpsh job wait'")
	f.BoolVar(&opts.CancelOnInterrupt, "cancel-on-interrupt", false, "with --wait-job, on Ctrl-C (or SIGTERM, SIGHUP) cancel the job (job-cancel) and wait for it to end")
	f.DurationVar(&opts.WaitTimeout, "wait-timeout", 0, "bound the wait for --wait-event (default: --timeout) or --wait-job (default: --timeout if given, else none)")
	f.IntVar(&opts.Parallel, "parallel", DefaultParallel, "with many targets, talk to at most `N` at once")
	c.ValidArgsFunction = commandNames(g, &opts.Sockets)
	c.RegisterFlagCompletionFunc("wait-event", eventNames(g, &opts.Sockets))
	return c
}

func execRun(ctx context.Context, opts *ExecOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := opts.check(); err != nil {
		return err
	}
	if opts.WaitTimeout < 0 {
		return usageErrorf("--wait-timeout must not be negative, not %v", opts.WaitTimeout)
	}
	if opts.Parallel < 1 {
		return usageErrorf("--parallel must be at least 1, not %d", opts.Parallel)
	}
	match, err := parseMatch(opts.Match)
	if err != nil {
		return err
	}
	if opts.match = match; match != nil && opts.WaitEvent == "" {
		return usageErrorf("--match needs --wait-event")
	}
	if opts.CancelOnInterrupt && !opts.WaitJob {
		return usageErrorf("--cancel-on-interrupt needs --wait-job")
	}
	if opts.WaitTimeout != 0 && opts.WaitEvent == "" && !opts.WaitJob {
		return usageErrorf("--wait-timeout needs --wait-event or --wait-job; --timeout bounds the command itself")
	}
	addrs, fanout, err := targets(opts.Getenv, opts.Sockets)
	if err != nil {
		return err
	}
	// Parse everything before connecting: a syntax error sends nothing.
	in, err := shell.ParseArgs(opts.Args)
	if err != nil {
		return syntaxError(err)
	}
	// Keys wrong whatever QEMU's schema says (a.=1, a=1 a=2, a.b=1 a=2)
	// are syntax errors too. Values wait for the schema: data={abc is a
	// string to a str argument.
	if err := qapi.CheckKeys(in.Args); err != nil {
		return syntaxError(err)
	}
	if opts.WaitJob {
		return execWaitJob(ctx, opts, addrs, fanout, in)
	}
	if fanout {
		return fanOut(ctx, opts.IO.Out, addrs, opts.Parallel, func(ctx context.Context, addr string) outcome {
			var o outcome
			ret, ev, err := opts.execTarget(ctx, addr, in, nil)
			if err != nil {
				o = failed(err)
				o.Return = ret // the command ran even if the wait failed
				return o
			}
			o.Return, o.Event = ret, ev
			return o
		})
	}
	_, ev, err := opts.execTarget(ctx, addrs[0], in, func(ret json.RawMessage) {
		opts.IO.Out.Write(opts.format().JSON(ret))
	})
	if err != nil {
		return err
	}
	if ev != nil {
		opts.IO.Out.Write(opts.format().JSON(ev))
	}
	return nil
}

// execTarget runs in at addr: connect, negotiate, run, and under
// --wait-event wait for the event. It returns the command's return value
// and the event as QEMU sent it. onReturn, if set, is given the return
// value as soon as it arrives. Errors are ready to report: an error reply,
// an *ExitError, or an error naming addr.
func (opts *ExecOptions) execTarget(ctx context.Context, addr string, in *shell.Input, onReturn func(json.RawMessage)) (ret, event json.RawMessage, err error) {
	var extra []qmp.Option
	if in.Raw == nil {
		// A named command runs in band: negotiating oob would only make
		// QEMU answer later.
		extra = append(extra, qmp.WithoutOOB())
	}
	client, closeLog, err := opts.newTargetClient(opts.IO.ErrOut, addr, extra...)
	if err != nil {
		return nil, nil, err
	}
	defer closeLog()
	cctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	if err := client.Connect(cctx, addr); err != nil {
		return nil, nil, connectionError(addr, timedOutAfter(err, opts.Timeout))
	}
	// The command's outcome is what counts: after a successful quit,
	// QEMU hanging up is no error.
	defer client.Disconnect()

	var schema *qapi.Schema
	if opts.WaitEvent != "" {
		schema, err = checkEventNames(cctx, client, addr, []string{opts.WaitEvent})
		if err != nil {
			return nil, nil, err
		}
	}
	var l *qmp.Listener
	if opts.WaitEvent != "" {
		// Before sending: the event may come before the reply.
		if l, err = client.ListenMatch(opts.match, opts.WaitEvent); err != nil {
			return nil, nil, err
		}
		defer l.Close()
	}
	ret, err = runInput(cctx, client, in, schema)
	var ee *qmp.ExecuteError
	var xe *ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee), errors.As(err, &xe):
		return nil, nil, err
	default:
		return nil, nil, connectionError(addr, timedOutAfter(err, opts.Timeout))
	}
	if onReturn != nil {
		onReturn(ret)
	}
	if l == nil {
		return ret, nil, nil
	}
	wait := opts.WaitTimeout
	if wait == 0 {
		wait = opts.Timeout
	}
	wctx, wcancel := context.WithTimeout(ctx, wait)
	defer wcancel()
	what := "event " + opts.WaitEvent
	if len(opts.Match) > 0 {
		what += " with " + strings.Join(opts.Match, ", ")
	}
	ev, err := waitEvent(wctx, client, l, what)
	if err != nil {
		return ret, nil, connectionError(addr, timedOutAfter(err, wait))
	}
	raw, err := ev.MarshalJSON()
	if err != nil {
		return ret, nil, err
	}
	return ret, raw, nil
}

// runInput sends in through client and returns its "return" value. The
// schema is fetched only when it is needed, to keep one-shot latency low:
// before sending when a value's type is ambiguous (id=123 is a string or
// an integer depending on the argument), and after an error reply, to
// explain it. A schema the caller fetched already is given as schema.
func runInput(ctx context.Context, client *qmp.Client, in *shell.Input, schema *qapi.Schema) (json.RawMessage, error) {
	fetched := schema != nil
	fetch := func(ctx context.Context) {
		fetched = true
		schema, _ = shell.FetchSchema(ctx, client)
	}
	if in.Raw == nil && qapi.NeedsSchema(in.Args) {
		fetch(ctx)
	}
	cmd, err := in.Command(schema)
	if err != nil {
		return nil, syntaxError(err)
	}
	ret, err := shell.Send(ctx, client, cmd)
	var ee *qmp.ExecuteError
	if in.Raw == nil && errors.As(err, &ee) {
		if !fetched {
			// The reply is the answer; the schema only explains it, so
			// a server slow to send it delays the answer a little, not
			// until --timeout.
			ectx, cancel := context.WithTimeout(ctx, explainTimeout)
			fetch(ectx)
			cancel()
		}
		err = in.Explain(schema, err)
	}
	if err == nil && in.HMP {
		// The shell's hmp line prints what the shell prints.
		return shell.HMPText(ret), nil
	}
	if err != nil || in.Raw == nil {
		return ret, err
	}
	// A raw message's reply: print its "return" value, as for a command.
	var r struct {
		Return json.RawMessage `json:"return"`
	}
	if err := json.Unmarshal(ret, &r); err != nil || r.Return == nil {
		return ret, nil
	}
	return r.Return, nil
}

// explainTimeout bounds the wait for the schema that explains an error
// reply. QEMU sends its schema in milliseconds.
var explainTimeout = 2 * time.Second

// syntaxError is a usage error in the QMP command, not in qmpsh's flags.
func syntaxError(err error) error {
	return &ExitError{Code: ExitUsage, Err: err, Syntax: true}
}
