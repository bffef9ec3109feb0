package qmp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/qmpsh/qmpsh/pkg/protocol"
)

// JobInfo is one job as query-jobs describes it.
type JobInfo struct {
	ID              string `json:"id"`
	Type            string `json:"type,omitempty"` // empty for a job gone before any query showed it
	Status          string `json:"status"`
	CurrentProgress int64  `json:"current-progress"`
	TotalProgress   int64  `json:"total-progress"`
	Error           string `json:"error,omitempty"`
}

// QueryJobs returns QEMU's jobs (query-jobs).
func (c *Client) QueryJobs(ctx context.Context) ([]JobInfo, error) {
	ret, err := c.Execute(ctx, "query-jobs", nil)
	if err != nil {
		return nil, err
	}
	var jobs []JobInfo
	if err := json.Unmarshal(ret, &jobs); err != nil {
		return nil, protocolErrorf("query-jobs returned %s: %v", truncate(ret, 80), err)
	}
	return jobs, nil
}

// JobError is how a job ended when it did not succeed: with QEMU's error
// (Desc), or cancelled.
type JobError struct {
	ID        string
	Desc      string // QEMU's description; "cancelled" for a cancelled job
	Cancelled bool
}

func (e *JobError) Error() string { return "job " + e.ID + ": " + e.Desc }

// ErrNoSuchJob is returned by JobWatch.Wait when QEMU has no job of that
// ID and none ended since the watch began.
var ErrNoSuchJob = errors.New("no such job")

// JobWatch follows one job from the moment it is made: it listens for
// the job's events before anything asks QEMU about the job, so a job
// started after WatchJob, even one that ends before Wait begins, is
// followed to its end. Close it when done.
type JobWatch struct {
	c       *Client
	id      string
	l       *Listener
	ofJob   *filter // JOB_STATUS_CHANGE of this job
	ofBlock *filter // BLOCK_JOB_* of this job

	info      JobInfo // the last known state
	known     bool    // info came from QEMU
	completed bool    // job-complete was sent
	ended     bool    // the job reached "null": it is gone
	aborting  bool    // it went through "aborting"
	cancelled bool    // BLOCK_JOB_CANCELLED
	errDesc   string  // the job's error, from BLOCK_JOB_COMPLETED or query-jobs
	// unacted: info.Status was taken in but not yet acted on (finalize,
	// dismiss, complete), because a Wait's ctx ended in between. The
	// event that brought it is gone from the listener, so the next Wait
	// acts on it first, or a job left concluded would be waited for
	// forever.
	unacted bool
}

// WatchJob starts following the job id. Make it before the command that
// starts the job, or before asking about a running one.
func (c *Client) WatchJob(id string) *JobWatch {
	ofJob, _ := Match{"id": id}.compile()
	ofBlock, _ := Match{"device": id}.compile()
	return &JobWatch{
		c:       c,
		id:      id,
		l:       c.Listen("JOB_STATUS_CHANGE", "BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED"),
		ofJob:   ofJob,
		ofBlock: ofBlock,
		info:    JobInfo{ID: id},
	}
}

// Close stops listening.
func (j *JobWatch) Close() {
	j.l.Close()
}

// JobWaitOptions say what JobWatch.Wait does on the way.
type JobWaitOptions struct {
	// Complete sends job-complete when the job is ready (a mirror that
	// has caught up), instead of waiting for someone else to.
	Complete bool
	// Progress is how often to ask QEMU for the job's progress while it
	// runs; 0 asks only when its status changes.
	Progress time.Duration
	// OnUpdate, if set, is called on Wait's goroutine with the job's
	// state at each status change, in order, and when Progress finds
	// its progress changed.
	OnUpdate func(JobInfo)
}

// Wait follows the job until it ends, and returns its last state. Jobs
// created with auto-finalize or auto-dismiss false are finalized and
// dismissed when QEMU waits for it. The error is a *JobError if the job
// failed or was cancelled, ErrNoSuchJob, ctx's error, or the
// connection's. Wait may be called again after ctx ended, with the same
// or other options, and goes on where it stopped; one Wait at a time.
func (j *JobWatch) Wait(ctx context.Context, opts JobWaitOptions) (JobInfo, error) {
	if !j.known && !j.ended {
		if err := j.first(ctx, opts); err != nil {
			return j.info, err
		}
	} else if j.unacted && !j.ended {
		now, found, err := j.query(ctx)
		if err != nil {
			return j.info, err
		}
		if err := j.act(ctx, now, found, opts); err != nil {
			return j.info, err
		}
	}
	var tick <-chan time.Time
	if opts.Progress > 0 {
		t := time.NewTicker(opts.Progress)
		defer t.Stop()
		tick = t.C
	}
	for !j.ended {
		ev, ticked, err := j.c.nextEvent(ctx, j.l, tick)
		if err != nil {
			return j.info, err
		}
		if ticked {
			if err := j.progress(ctx, opts); err != nil {
				return j.info, err
			}
			continue
		}
		if err := j.handle(ctx, ev, opts, true); err != nil {
			return j.info, err
		}
	}
	return j.info, j.outcome()
}

// first asks QEMU about the job for the first time. Events queued by
// then came before the reply, or just after it: they are taken in, their
// actions done, and the state they lead to reported once, so that a
// status the query already showed is not reported again as a change. A
// job missing from query-jobs may have ended already: its events then
// came before the reply, and are queued.
func (j *JobWatch) first(ctx context.Context, opts JobWaitOptions) error {
	info, found, err := j.query(ctx)
	if err != nil {
		return err
	}
	if !found {
		for !j.ended {
			ev, ok := takeArrived(j.l)
			if !ok {
				break
			}
			if err := j.handle(ctx, ev, opts, true); err != nil {
				return err
			}
		}
		if !j.ended {
			return fmt.Errorf("job %s: %w", j.id, ErrNoSuchJob)
		}
		return nil
	}
	j.info, j.known, j.unacted = info, true, true
	changed := false
	for n := j.l.Len(); n > 0 && !j.ended; n-- {
		ev, ok := takeArrived(j.l)
		if !ok {
			break
		}
		if ev.Name == "JOB_STATUS_CHANGE" && j.ofJob.matches(&ev) {
			changed = true
		}
		if err := j.handle(ctx, ev, opts, false); err != nil {
			return err
		}
	}
	if opts.OnUpdate != nil {
		opts.OnUpdate(j.info)
	}
	if changed {
		return nil // handle acted on the events
	}
	return j.act(ctx, info, true, opts)
}

func (j *JobWatch) query(ctx context.Context) (JobInfo, bool, error) {
	jobs, err := j.c.QueryJobs(ctx)
	if err != nil {
		return JobInfo{}, false, err
	}
	for _, info := range jobs {
		if info.ID == j.id {
			return info, true, nil
		}
	}
	return JobInfo{}, false, nil
}

// progress updates the progress from query-jobs; the status is left to
// the events, which carry every change in order.
func (j *JobWatch) progress(ctx context.Context, opts JobWaitOptions) error {
	info, found, err := j.query(ctx)
	if err != nil || !found {
		return err
	}
	if info.CurrentProgress == j.info.CurrentProgress && info.TotalProgress == j.info.TotalProgress {
		return nil
	}
	j.info.CurrentProgress, j.info.TotalProgress = info.CurrentProgress, info.TotalProgress
	j.info.Type, j.known = info.Type, true
	if opts.OnUpdate != nil {
		opts.OnUpdate(j.info)
	}
	return nil
}

// handle takes in one of the listener's events; report says whether to
// call OnUpdate for a status change.
func (j *JobWatch) handle(ctx context.Context, ev Event, opts JobWaitOptions, report bool) error {
	switch ev.Name {
	case "BLOCK_JOB_COMPLETED":
		if j.ofBlock.matches(&ev) {
			// Its offset and len are the job's final progress, which a
			// query can no longer show once the job is gone.
			var d struct {
				Error  string `json:"error"`
				Offset *int64 `json:"offset"`
				Len    *int64 `json:"len"`
			}
			if json.Unmarshal(ev.Data, &d) == nil {
				if d.Error != "" {
					j.errDesc = d.Error
				}
				if d.Offset != nil && d.Len != nil {
					j.info.CurrentProgress, j.info.TotalProgress = *d.Offset, *d.Len
				}
			}
		}
		return nil
	case "BLOCK_JOB_CANCELLED":
		if j.ofBlock.matches(&ev) {
			j.cancelled = true
		}
		return nil
	}
	if !j.ofJob.matches(&ev) {
		return nil
	}
	var d struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(ev.Data, &d); err != nil || d.Status == "" {
		return protocolErrorf("JOB_STATUS_CHANGE without a status: %s", truncate(ev.Data, 80))
	}
	j.info.Status, j.unacted = d.Status, true
	// The status comes from the event: a reply may be ahead of the
	// events still queued. Only the progress comes from the query.
	var now JobInfo
	found := false
	if d.Status != "null" {
		var err error
		if now, found, err = j.query(ctx); err != nil {
			return err
		}
		if found {
			j.info.CurrentProgress, j.info.TotalProgress, j.info.Type = now.CurrentProgress, now.TotalProgress, now.Type
			j.known = true
		}
	}
	if report && opts.OnUpdate != nil {
		opts.OnUpdate(j.info)
	}
	return j.act(ctx, now, found, opts)
}

// act does what the job's status asks of its owner. now is the job as
// QEMU has it at this moment: QEMU moves an auto-finalized job on from
// "pending", and an auto-dismissed one from "concluded", before it runs
// another command, so a job still there in that state waits for us. The
// status counts as acted on only once act succeeds.
func (j *JobWatch) act(ctx context.Context, now JobInfo, found bool, opts JobWaitOptions) error {
	switch j.info.Status {
	case "aborting":
		j.aborting = true
	case "ready":
		if opts.Complete && !j.completed && found && now.Status == "ready" {
			// Only a job-complete QEMU took counts: one refused because
			// the job was paused (standby) since the query is sent again
			// when the job is ready again.
			done, err := j.command(ctx, "job-complete", "ready")
			if err != nil {
				return err
			}
			j.completed = done
		}
	case "pending":
		if found && now.Status == "pending" {
			if _, err := j.command(ctx, "job-finalize", "pending"); err != nil {
				return err
			}
		}
	case "concluded":
		if found && now.Status == "concluded" {
			switch now.Error {
			case "":
			case cancelledError:
				// Cancelled before this watch saw BLOCK_JOB_CANCELLED
				// (job-cancel, then job wait on the concluded job).
				j.cancelled = true
			default:
				j.errDesc = now.Error
			}
			if _, err := j.command(ctx, "job-dismiss", "concluded"); err != nil {
				return err
			}
		}
	case "null":
		j.ended = true
	}
	j.unacted = false
	return nil
}

// command sends verb (job-finalize...) for the job, found in status,
// and says whether QEMU did it. QEMU refuses it if another client acted
// first (two waiters on one job both dismiss it), or if the job moved on
// by itself (a mirror paused from ready to standby): the job has then
// left status, its events say where, and the refusal is no failure of
// the job's.
func (j *JobWatch) command(ctx context.Context, verb, status string) (done bool, err error) {
	_, err = j.c.Execute(ctx, verb, map[string]any{"id": j.id})
	var ee *ExecuteError
	if !errors.As(err, &ee) {
		return err == nil, err
	}
	now, found, qerr := j.query(ctx)
	switch {
	case qerr != nil:
		return false, qerr
	case !found || now.Status != status:
		return false, nil
	}
	return false, err
}

// cancelledError is the error query-jobs shows for a job that was
// cancelled, once it has concluded: strerror(ECANCELED), in the C locale
// QEMU's messages are in.
const cancelledError = "Operation canceled"

func (j *JobWatch) outcome() error {
	switch {
	case j.cancelled:
		return &JobError{ID: j.id, Desc: "cancelled", Cancelled: true}
	case j.errDesc != "":
		j.info.Error = j.errDesc
		return &JobError{ID: j.id, Desc: j.errDesc}
	case j.aborting:
		return &JobError{ID: j.id, Desc: "aborted"}
	}
	return nil
}

// takeArrived returns an event that has arrived, without waiting for
// events yet to come: the one receive that needs no select. It is the
// one place JobWatch and MigrationWatch empty their listener.
func takeArrived(l *Listener) (Event, bool) { return l.Take() }

// nextEvent returns the next event from l, or ticked when tick fires
// first, or an error when ctx ends or the session ends. Events that
// arrived before the end are still returned.
func (c *Client) nextEvent(ctx context.Context, l *Listener, tick <-chan time.Time) (ev Event, ticked bool, err error) {
	for {
		// The events that came before the session ended have arrived
		// by the time its runstate leaves RUNNING.
		state, changed := c.RunstateChanged()
		if state != protocol.Running {
			if ev, ok := l.Take(); ok {
				return ev, false, nil
			}
			cause := c.Err()
			if cause == nil {
				cause = errors.New("disconnected")
			}
			return Event{}, false, fmt.Errorf("connection lost while waiting for events: %w", cause)
		}
		select {
		case ev, ok := <-l.Events():
			if !ok {
				return Event{}, false, errors.New("listener closed")
			}
			return ev, false, nil
		case <-changed:
		case <-tick:
			return Event{}, true, nil
		case <-ctx.Done():
			return Event{}, false, ctx.Err()
		}
	}
}
