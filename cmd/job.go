package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/qmpsh/qmpsh/pkg/protocol"
	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/shell"
)

// ExitInterrupted is the exit status of a wait that Ctrl-C ended, as a
// shell reports a command killed by SIGINT.
const ExitInterrupted = 130

// JobWaitOptions are the inputs of qmpsh job wait.
type JobWaitOptions struct {
	*GlobalOptions
	Socket            string
	ID                string
	Complete          bool
	CancelOnInterrupt bool
}

// JobListOptions are the inputs of qmpsh job list.
type JobListOptions struct {
	*GlobalOptions
	Socket string
}

func newJobCmd(g *GlobalOptions, waitF func(context.Context, *JobWaitOptions) error, listF func(context.Context, *JobListOptions) error) *cobra.Command {
	c := &cobra.Command{
		Use:   "job",
		Short: "Follow QEMU's background jobs (backup, mirror, commit, stream, create)",
		Example: `  qmpsh job list -s /tmp/qmp.sock
  qmpsh job wait -s /tmp/qmp.sock b0`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown job command %q (use wait or list)", args[0])
			}
			return usageErrorf("job needs a command: wait or list")
		},
		RunE: func(c *cobra.Command, args []string) error { return nil },
	}
	c.AddCommand(newJobWaitCmd(g, waitF), newJobListCmd(g, listF))
	return c
}

func newJobWaitCmd(g *GlobalOptions, runF func(context.Context, *JobWaitOptions) error) *cobra.Command {
	opts := &JobWaitOptions{GlobalOptions: g}
	c := &cobra.Command{
		Use:   "wait [-s ADDR] ID [--complete] [--timeout D]",
		Short: "Wait for a job to end, showing its progress",
		Long: `Follow job ID (as query-jobs names it) until it ends. qmpsh listens for
the job's events before it first asks about the job, so no change is
missed, even for a job that ends at once. A job created with
auto-finalize=false or auto-dismiss=false is finalized and dismissed
when it waits for that. With --complete, a job that becomes ready (a
mirror that has caught up) is completed (job-complete); without it,
such a job is waited for until someone else completes or cancels it.

On a terminal, a progress bar shows the job's progress, rate and time
left. Otherwise stdout gets one JSON line per status change, the job as
query-jobs shows it ({"id", "type", "status", "current-progress",
"total-progress"}; no "type" for a job that ended before qmpsh could ask
about it), and a last line with the outcome: {"id", "outcome"}
where outcome is completed, failed, cancelled, timeout, interrupted or
disconnected, with "error" when there is one.

--timeout bounds the whole wait when given (otherwise only connecting).
Ctrl-C stops waiting and leaves the job running, unless
--cancel-on-interrupt is given: then the job is cancelled and waited
for. If job-cancel is refused (a proxy's --read-only or --deny), the
wait stops as without --cancel-on-interrupt, unless the job was ending
anyway: then its end is waited for.

The exit status is 0 when the job concluded without error, 1 when it
failed or was cancelled (its error on stderr) or QEMU refused a command
(no such job...), 4 when --timeout ran out, 3 when the connection was
lost, and 130 when Ctrl-C stopped the wait.

` + exitStatusHelp,
		Example: `  qmpsh exec blockdev-backup job-id=b0 device=src target=dst sync=full
  qmpsh job wait b0
  qmpsh job wait -s /tmp/qmp.sock --complete m0 --timeout 10m`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("job wait takes one job ID, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			opts.ID = args[0]
			return runF(c.Context(), opts)
		},
	}
	f := c.Flags()
	oneSocketFlag(f, &opts.Socket, "QMP server `ADDR` (default $QMP_SOCKET)")
	f.BoolVar(&opts.Complete, "complete", false, "complete the job when it is ready (job-complete)")
	f.BoolVar(&opts.CancelOnInterrupt, "cancel-on-interrupt", false, "on Ctrl-C (or SIGTERM, SIGHUP), cancel the job (job-cancel) and wait for it to end")
	return c
}

func newJobListCmd(g *GlobalOptions, runF func(context.Context, *JobListOptions) error) *cobra.Command {
	opts := &JobListOptions{GlobalOptions: g}
	c := &cobra.Command{
		Use:   "list [-s ADDR]",
		Short: "List QEMU's jobs",
		Long: `List QEMU's jobs (query-jobs): a table on a terminal; otherwise one JSON
line per job, as query-jobs shows it.

` + exitStatusHelp,
		Example: `  qmpsh job list -s /tmp/qmp.sock
  qmpsh job list | jq -r 'select(.status == "concluded") | .id'`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("job list takes no arguments, got %q (use -s for the address)", args[0])
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error { return runF(c.Context(), opts) },
	}
	oneSocketFlag(c.Flags(), &opts.Socket, "QMP server `ADDR` (default $QMP_SOCKET)")
	return c
}

// connectOne connects a client to the address of -s (or $QMP_SOCKET),
// bounded by --timeout. Call the returned function when done.
func (o *GlobalOptions) connectOne(ctx context.Context, socket string) (*qmp.Client, string, func(), error) {
	addr, err := address(o.Getenv, socket, "-s ADDR")
	if err != nil {
		return nil, "", nil, err
	}
	client, closeLog, err := o.newTargetClient(o.IO.ErrOut, addr)
	if err != nil {
		return nil, "", nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if err := client.Connect(cctx, addr); err != nil {
		closeLog()
		return nil, "", nil, connectionError(addr, timedOutAfter(err, o.Timeout))
	}
	return client, addr, func() { client.Disconnect(); closeLog() }, nil
}

func jobListRun(ctx context.Context, opts *JobListOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := opts.check(); err != nil {
		return err
	}
	client, addr, done, err := opts.connectOne(ctx, opts.Socket)
	if err != nil {
		return err
	}
	defer done()
	qctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	jobs, err := client.QueryJobs(qctx)
	if err != nil {
		var ee *qmp.ExecuteError
		if errors.As(err, &ee) {
			return err
		}
		return connectionError(addr, err)
	}
	if !opts.IO.OutTTY {
		r := newReporter(opts.IO)
		for _, j := range jobs {
			r.writeJSON(j)
		}
		return nil
	}
	if len(jobs) == 0 {
		fmt.Fprintln(opts.IO.Out, "no jobs")
		return nil
	}
	tw := tabwriter.NewWriter(opts.IO.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTYPE\tSTATUS\tPROGRESS\tERROR")
	for _, j := range jobs {
		progress := fmt.Sprintf("%d/%d", j.CurrentProgress, j.TotalProgress)
		if j.TotalProgress > 0 {
			progress = fmt.Sprintf("%.1f%%", 100*float64(j.CurrentProgress)/float64(j.TotalProgress))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", j.ID, j.Type, j.Status, progress, j.Error)
	}
	return tw.Flush()
}

func jobWaitRun(ctx context.Context, opts *JobWaitOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := opts.check(); err != nil {
		return err
	}
	if opts.ID == "" {
		return usageErrorf("job wait needs a job ID")
	}
	client, addr, done, err := opts.connectOne(ctx, opts.Socket)
	if err != nil {
		return err
	}
	defer done()
	w := client.WatchJob(opts.ID)
	defer w.Close()
	var limit time.Duration
	if opts.TimeoutSet {
		limit = opts.Timeout
	}
	return opts.followJob(ctx, client, addr, w, followJob{
		id: opts.ID, complete: opts.Complete, cancelOnInterrupt: opts.CancelOnInterrupt, timeout: limit})
}

// followJob is how job wait and exec --wait-job wait for a job.
type followJob struct {
	id                string
	complete          bool
	cancelOnInterrupt bool
	timeout           time.Duration // 0: none
}

// jobOutcome is the last JSON line of a job's wait.
type jobOutcome struct {
	ID              string `json:"id"`
	Outcome         string `json:"outcome"`
	Error           string `json:"error,omitempty"`
	CurrentProgress int64  `json:"current-progress"`
	TotalProgress   int64  `json:"total-progress"`
}

// followJob waits for the job w watches, showing its progress, and
// returns the error that gives the exit status.
func (o *GlobalOptions) followJob(ctx context.Context, client *qmp.Client, addr string, w *qmp.JobWatch, f followJob) error {
	if f.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.timeout)
		defer cancel()
	}
	r := newReporter(o.IO)
	wopts := qmp.JobWaitOptions{
		Complete: f.complete,
		OnUpdate: func(j qmp.JobInfo) {
			if j.Status == "null" && r.tty {
				return // gone: the bar keeps the last real status
			}
			r.update("job "+j.ID, j.Status, j.CurrentProgress, j.TotalProgress, "", j)
		},
	}
	if o.IO.OutTTY {
		wopts.Progress = progressEvery
	}
	ictx, stop := o.signalContext(ctx, stopSignals...)
	info, err := w.Wait(ictx, wopts)
	stop()
	interrupted := errors.Is(err, context.Canceled) && ctx.Err() == nil
	if interrupted && f.cancelOnInterrupt {
		var wait bool
		if wait, err = o.cancelJob(ctx, client, f.id); wait {
			info, err = w.Wait(ctx, wopts)
		}
		interrupted = !wait && err == nil
	}
	out := jobOutcome{ID: f.id, Outcome: "completed", CurrentProgress: info.CurrentProgress, TotalProgress: info.TotalProgress}
	var je *qmp.JobError
	var ee *qmp.ExecuteError
	switch {
	case interrupted:
		out.Outcome = "interrupted"
		err = &ExitError{Code: signalStatus(ictx), Err: fmt.Errorf("interrupted: stopped waiting; job %s goes on", f.id)}
	case err == nil:
	case errors.As(err, &je):
		out.Outcome, out.Error = "failed", je.Desc
		if je.Cancelled {
			out.Outcome, out.Error = "cancelled", ""
		}
		err = &ExitError{Code: ExitQMPError, Err: err}
	case errors.Is(err, qmp.ErrNoSuchJob), errors.As(err, &ee):
		out.Outcome, out.Error = "failed", strings.TrimPrefix(err.Error(), "job "+f.id+": ")
		if !errors.As(err, &ee) {
			// QEMU dismisses a job that ends, unless told not to.
			err = &ExitError{Code: ExitQMPError, Err: fmt.Errorf("%w (QEMU lists none; one that ended is gone unless started with auto-dismiss=false)", err)}
		}
	case errors.Is(err, context.DeadlineExceeded):
		out.Outcome = "timeout"
		// Go's "context deadline exceeded" says nothing to a person.
		err = &wrapped{fmt.Sprintf("job %s: timed out after %v waiting; the job goes on", f.id, f.timeout), err}
	default:
		err = lostConnection(client, err)
		out.Outcome, out.Error = "disconnected", err.Error()
		err = connectionError(addr, err)
	}
	text := "job " + f.id + " " + out.Outcome
	if out.Error != "" {
		text += ": " + out.Error
	}
	r.finish(err == nil, text, out)
	return err
}

// cancelJob cancels job id after Ctrl-C and says whether to wait for
// the job's end. QEMU refuses to cancel a job that is ending anyway
// (aborting, concluded, gone since the Ctrl-C): its end, not the
// refusal, is then the outcome. Any other refusal (a proxy's --read-only
// or --deny job-cancel) leaves the job running, maybe for hours: the
// wait then stops as an interrupted one does, and the job goes on.
func (o *GlobalOptions) cancelJob(ctx context.Context, client *qmp.Client, id string) (wait bool, err error) {
	fmt.Fprintf(o.IO.ErrOut, "qmpsh: interrupted: cancelling job %s\n", id)
	_, err = client.Execute(ctx, "job-cancel", map[string]any{"id": id})
	var ee *qmp.ExecuteError
	if !errors.As(err, &ee) {
		return err == nil, err
	}
	jobs, qerr := client.QueryJobs(ctx)
	if qerr != nil && !errors.As(qerr, &ee) {
		return false, qerr
	}
	status := "null" // gone
	if qerr != nil {
		status = "unknown (" + qerr.Error() + ")"
	}
	for _, j := range jobs {
		if j.ID == id {
			status = j.Status
		}
	}
	switch status {
	case "aborting", "concluded", "null":
		fmt.Fprintf(o.IO.ErrOut, "qmpsh: job %s: not cancelled (%v); waiting for its end\n", id, err)
		return true, nil
	}
	fmt.Fprintf(o.IO.ErrOut, "qmpsh: job %s: not cancelled (%v); its status: %s\n", id, err, status)
	return false, nil
}

// lostConnection explains the error of a command sent after the session
// ended (QEMU went away while a wait was about to ask it something): the
// client's state only says it is disconnecting; the cause says why.
func lostConnection(client *qmp.Client, err error) error {
	var se *protocol.StateError
	if !errors.As(err, &se) {
		return err
	}
	if cause := client.Err(); cause != nil {
		return fmt.Errorf("connection lost: %w", cause)
	}
	return errors.New("connection lost")
}

// execWaitJob is exec --wait-job: it watches the job the command names,
// runs the command, prints its return value as exec does, and waits for
// the job.
func execWaitJob(ctx context.Context, opts *ExecOptions, addrs []string, fanout bool, in *shell.Input) error {
	switch {
	case fanout:
		return usageErrorf("--wait-job takes one target, not several -s or a glob")
	case opts.WaitEvent != "":
		return usageErrorf("--wait-job and --wait-event do not go together")
	}
	id, err := jobID(in)
	if err != nil {
		return err
	}
	client, addr, done, err := opts.connectOne(ctx, addrs[0])
	if err != nil {
		return err
	}
	defer done()
	// Before sending: a job may end before the command's reply.
	w := client.WatchJob(id)
	defer w.Close()
	cctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	ret, err := runInput(cctx, client, in, nil)
	cancel()
	var ee *qmp.ExecuteError
	var xe *ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee), errors.As(err, &xe):
		return err
	default:
		return connectionError(addr, err)
	}
	if !opts.IO.OutTTY {
		// A pipe gets results only: the return value, then the job's
		// lines.
		opts.IO.Out.Write(opts.format().JSON(ret))
	}
	limit := opts.WaitTimeout
	if limit == 0 && opts.TimeoutSet {
		limit = opts.Timeout
	}
	return opts.followJob(ctx, client, addr, w, followJob{id: id, cancelOnInterrupt: opts.CancelOnInterrupt, timeout: limit})
}

// jobID is the ID of the job the command starts or acts on: its job-id
// argument, else its id (job-cancel id=...), else its device (block jobs
// are named after their device by default).
func jobID(in *shell.Input) (string, error) {
	var args map[string]any
	if in.Raw != nil {
		var m struct {
			Arguments map[string]any `json:"arguments"`
		}
		if err := json.Unmarshal(in.Raw, &m); err == nil {
			args = m.Arguments
		}
	} else {
		args = map[string]any{}
		for _, kv := range in.Args {
			args[kv.Key] = kv.Value
		}
	}
	for _, key := range []string{"job-id", "id", "device"} {
		if id, ok := args[key].(string); ok && id != "" {
			return id, nil
		}
	}
	return "", usageErrorf("--wait-job needs to know the job: give the command a job-id (or device) argument")
}
