package qmp_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// jobQEMU starts QEMU with null-co nodes src and dst, and a node bad
// that fails every write, and returns a client on it.
func jobQEMU(t *testing.T) *qmp.Client {
	t.Helper()
	c := connect(t, qmptest.StartQEMU(t))
	for _, name := range []string{"src", "dst", "bad0"} {
		mustExec(t, c, "blockdev-add", map[string]any{
			"driver": "null-co", "node-name": name, "size": 1 << 30, "read-zeroes": false})
	}
	mustExec(t, c, "blockdev-add", map[string]any{
		"driver": "blkdebug", "node-name": "bad", "image": "bad0",
		"inject-error": []any{map[string]any{"event": "pwritev", "errno": 5}}})
	return c
}

func mustExec(t *testing.T, c *qmp.Client, cmd string, args any) json.RawMessage {
	t.Helper()
	ret, err := c.Execute(testContext(t), cmd, args)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return ret
}

// statuses collects what OnUpdate saw.
type statuses struct{ seen []qmp.JobInfo }

func (s *statuses) update(info qmp.JobInfo) { s.seen = append(s.seen, info) }

func (s *statuses) names() []string {
	var n []string
	for _, i := range s.seen {
		n = append(n, i.Status)
	}
	return n
}

func TestJobWatch(t *testing.T) {
	c := jobQEMU(t)
	ctx := testContext(t)

	t.Run("BackupWithProgress", func(t *testing.T) {
		w := c.WatchJob("b0")
		defer w.Close()
		// About two seconds at this speed, polled often enough to see
		// the job part done.
		mustExec(t, c, "blockdev-backup", map[string]any{
			"job-id": "b0", "device": "src", "target": "dst", "sync": "full", "speed": 512 << 20})
		var s statuses
		info, err := w.Wait(ctx, qmp.JobWaitOptions{Progress: 20 * time.Millisecond, OnUpdate: s.update})
		if err != nil || info.Status != "null" || info.Error != "" || info.CurrentProgress != 1<<30 || info.TotalProgress != 1<<30 {
			t.Fatalf("Wait = %+v, %v; saw %v", info, err, s.names())
		}
		partly := slices.ContainsFunc(s.seen, func(i qmp.JobInfo) bool {
			return i.Status == "running" && i.CurrentProgress > 0 && i.CurrentProgress < i.TotalProgress
		})
		if !partly || !slices.Contains(s.names(), "concluded") {
			t.Errorf("saw %+v, want a running job part done, then concluded", s.seen)
		}
	})
	t.Run("ManualFinalizeAndDismiss", func(t *testing.T) {
		w := c.WatchJob("b1")
		defer w.Close()
		mustExec(t, c, "blockdev-backup", map[string]any{
			"job-id": "b1", "device": "src", "target": "dst", "sync": "full",
			"auto-finalize": false, "auto-dismiss": false})
		var s statuses
		info, err := w.Wait(ctx, qmp.JobWaitOptions{OnUpdate: s.update})
		if err != nil || info.Status != "null" {
			t.Fatalf("Wait = %+v, %v; saw %v", info, err, s.names())
		}
		for _, want := range []string{"pending", "concluded", "null"} {
			if !slices.Contains(s.names(), want) {
				t.Errorf("saw %v, want %s among them", s.names(), want)
			}
		}
		if jobs, err := c.QueryJobs(ctx); err != nil || len(jobs) != 0 {
			t.Errorf("query-jobs after Wait = %+v, %v; want none left", jobs, err)
		}
	})
	for _, dismiss := range []bool{true, false} {
		name := map[bool]string{true: "FailureAutoDismiss", false: "FailureManualDismiss"}[dismiss]
		t.Run(name, func(t *testing.T) {
			w := c.WatchJob("f0")
			defer w.Close()
			mustExec(t, c, "blockdev-backup", map[string]any{
				"job-id": "f0", "device": "src", "target": "bad", "sync": "full", "auto-dismiss": dismiss})
			info, err := w.Wait(ctx, qmp.JobWaitOptions{})
			var je *qmp.JobError
			if !errors.As(err, &je) || je.Desc != "Input/output error" || je.ID != "f0" ||
				err.Error() != "job f0: Input/output error" || info.Error != "Input/output error" {
				t.Fatalf("Wait = %+v, %v; want job f0's Input/output error", info, err)
			}
		})
	}
	// A cancelled job kept listed (auto-dismiss=false) shows
	// "Operation canceled" as its error in query-jobs: still cancelled,
	// whether Wait saw the cancel come or found the job concluded.
	for _, before := range []bool{true, false} {
		name := map[bool]string{true: "CancelledManualDismissBeforeWait", false: "CancelledManualDismissDuringWait"}[before]
		t.Run(name, func(t *testing.T) {
			id := map[bool]string{true: "k0", false: "k1"}[before]
			status, err := c.ListenMatch(qmp.Match{"id": id}, "JOB_STATUS_CHANGE")
			if err != nil {
				t.Fatal(err)
			}
			defer status.Close()
			w := c.WatchJob(id)
			defer w.Close()
			mustExec(t, c, "blockdev-backup", map[string]any{
				"job-id": id, "device": "src", "target": "dst", "sync": "full", "speed": 1 << 20, "auto-dismiss": false})
			waitStatus := func(want string) {
				t.Helper()
				for ev := range status.Events() {
					var d struct{ Status string }
					if json.Unmarshal(ev.Data, &d) == nil && d.Status == want {
						return
					}
				}
				t.Fatalf("no %s status", want)
			}
			waitStatus("running")
			type result struct {
				info qmp.JobInfo
				err  error
			}
			done := make(chan result, 1)
			if !before {
				go func() {
					info, err := w.Wait(ctx, qmp.JobWaitOptions{})
					done <- result{info, err}
				}()
			}
			mustExec(t, c, "job-cancel", map[string]any{"id": id})
			if before {
				waitStatus("concluded")
				info, err := w.Wait(ctx, qmp.JobWaitOptions{})
				done <- result{info, err}
			}
			r := <-done
			var je *qmp.JobError
			if !errors.As(r.err, &je) || !je.Cancelled || r.err.Error() != "job "+id+": cancelled" || r.info.Status != "null" {
				t.Fatalf("Wait = %+v, %v; want %s cancelled", r.info, r.err, id)
			}
		})
	}
	t.Run("MirrorCompletedWhenReady", func(t *testing.T) {
		w := c.WatchJob("m0")
		defer w.Close()
		mustExec(t, c, "blockdev-mirror", map[string]any{
			"job-id": "m0", "device": "src", "target": "dst", "sync": "full", "speed": 1 << 30})
		var s statuses
		info, err := w.Wait(ctx, qmp.JobWaitOptions{Complete: true, OnUpdate: s.update})
		if err != nil || info.Status != "null" {
			t.Fatalf("Wait = %+v, %v; saw %v", info, err, s.names())
		}
		if i, j := slices.Index(s.names(), "ready"), slices.Index(s.names(), "concluded"); i < 0 || j < i {
			t.Errorf("saw %v, want ready then concluded", s.names())
		}
	})
	t.Run("EndedBeforeWait", func(t *testing.T) {
		// The job's whole life is queued by the time Wait asks.
		gone, err := c.ListenMatch(qmp.Match{"id": "e0", "status": "null"}, "JOB_STATUS_CHANGE")
		if err != nil {
			t.Fatal(err)
		}
		defer gone.Close()
		w := c.WatchJob("e0")
		defer w.Close()
		mustExec(t, c, "blockdev-backup", map[string]any{
			"job-id": "e0", "device": "src", "target": "bad", "sync": "full"})
		<-gone.Events()
		_, err = w.Wait(ctx, qmp.JobWaitOptions{})
		var je *qmp.JobError
		if !errors.As(err, &je) || je.Desc != "Input/output error" {
			t.Fatalf("Wait = %v, want the ended job's Input/output error", err)
		}
	})
	t.Run("NoSuchJob", func(t *testing.T) {
		w := c.WatchJob("nope")
		defer w.Close()
		if _, err := w.Wait(ctx, qmp.JobWaitOptions{}); !errors.Is(err, qmp.ErrNoSuchJob) || err.Error() != "job nope: no such job" {
			t.Fatalf("Wait = %v, want ErrNoSuchJob", err)
		}
	})
	t.Run("WaitAgainAfterContextEnds", func(t *testing.T) {
		w := c.WatchJob("c0")
		defer w.Close()
		mustExec(t, c, "blockdev-mirror", map[string]any{
			"job-id": "c0", "device": "src", "target": "dst", "sync": "full", "speed": 1 << 30})
		// Without Complete, a mirror waits at ready for good.
		ready := make(chan struct{})
		wctx, cancel := context.WithCancel(ctx)
		_, err := w.Wait(wctx, qmp.JobWaitOptions{OnUpdate: func(i qmp.JobInfo) {
			if i.Status == "ready" {
				close(ready)
				cancel()
			}
		}})
		<-ready
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait = %v, want context.Canceled", err)
		}
		mustExec(t, c, "job-cancel", map[string]any{"id": "c0"})
		info, err := w.Wait(ctx, qmp.JobWaitOptions{})
		var je *qmp.JobError
		if !errors.As(err, &je) || !je.Cancelled || err.Error() != "job c0: cancelled" || info.Status != "null" {
			t.Fatalf("second Wait = %+v, %v; want c0 cancelled", info, err)
		}
	})
}

// TestListenMatchTwoJobs: of two concurrent jobs, the listener gets the
// completion of the one it matches, though the other's came first.
func TestListenMatchTwoJobs(t *testing.T) {
	c := jobQEMU(t)
	mine, err := c.ListenMatch(qmp.Match{"device": "slow"}, "BLOCK_JOB_COMPLETED")
	if err != nil {
		t.Fatal(err)
	}
	defer mine.Close()
	all := c.Listen("BLOCK_JOB_COMPLETED")
	defer all.Close()
	mustExec(t, c, "blockdev-backup", map[string]any{
		"job-id": "slow", "device": "src", "target": "dst", "sync": "full", "speed": 512 << 20})
	mustExec(t, c, "blockdev-backup", map[string]any{
		"job-id": "fast", "device": "src", "target": "bad", "sync": "full"})
	first := <-all.Events()
	ev := <-mine.Events()
	if string(first.Data) == "" || !(qmp.Match{"device": "fast"}).Matches(first) {
		t.Fatalf("first completion %s, want the fast job's (the test needs it first)", first.Data)
	}
	var d struct{ Device, Error string }
	if err := json.Unmarshal(ev.Data, &d); err != nil || d.Device != "slow" || d.Error != "" {
		t.Fatalf("matched %s %s, want the slow job's completion", ev.Name, ev.Data)
	}
}

// TestJobWaitResumesAnInterruptedAction: a Wait whose ctx ends while it
// dismisses a concluded job (auto-dismiss=false) leaves that to the next
// Wait, which must not wait for an event that already came. QEMU answers
// too fast to end a ctx in between, so a fake server holds the first
// job-dismiss's reply until the next request, as a slow QEMU would.
func TestJobWaitResumesAnInterruptedAction(t *testing.T) {
	s := fakeServer(t, func(c *qmptest.Conn) {
		if !negotiated(c) {
			return
		}
		var held *qmptest.Request // the first job-dismiss, unanswered
		gone, dismissed := false, false
		finish := func(dismiss *qmptest.Request) {
			// QEMU's dismiss: the job goes, then the reply.
			c.Event("JOB_STATUS_CHANGE", map[string]any{"id": "j0", "status": "null"})
			c.Reply(dismiss.ID, nil)
			gone = true
		}
		for {
			req, err := c.ReadRequest()
			if err != nil {
				return
			}
			if held != nil {
				finish(held) // QEMU ran it before this request
				held = nil
			}
			switch req.Execute {
			case "query-jobs":
				jobs := []any{}
				if !gone {
					jobs = append(jobs, map[string]any{"id": "j0", "type": "backup", "status": "concluded",
						"current-progress": 2, "total-progress": 2})
				}
				c.Reply(req.ID, jobs)
			case "job-dismiss":
				switch {
				case gone:
					c.ReplyError(req.ID, "GenericError", "Job not found")
				case !dismissed:
					held, dismissed = req, true
				default:
					finish(req)
				}
			default:
				c.ReplyError(req.ID, "CommandNotFound", "The command "+req.Execute+" has not been found")
			}
		}
	})
	c := connect(t, s.Addr)
	w := c.WatchJob("j0")
	defer w.Close()
	ctx, cancel := context.WithCancel(testContext(t))
	var seen statuses
	_, err := w.Wait(ctx, qmp.JobWaitOptions{OnUpdate: func(info qmp.JobInfo) {
		seen.update(info)
		cancel() // before Wait dismisses the job
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("first Wait = %v, want context.Canceled", err)
	}
	info, err := w.Wait(testContext(t), qmp.JobWaitOptions{OnUpdate: seen.update})
	if err != nil || info.Status != "null" || info.CurrentProgress != 2 {
		t.Fatalf("second Wait = %+v, %v; want j0 gone, completed", info, err)
	}
	if got := seen.names(); !slices.Equal(got, []string{"concluded", "null"}) {
		t.Fatalf("statuses %v, want [concluded null]", got)
	}
}

// TestJobWaitActedOnByAnother: another client (a second waiter, say)
// finalizes, dismisses or completes the job between Wait's query and its
// own command, which QEMU then refuses: the job went on as Wait wanted,
// and Wait reports how it ended, not the refusal.
func TestJobWaitActedOnByAnother(t *testing.T) {
	second := filepath.Join(shortTempDir(t), "m2.sock")
	sock := qmptest.StartQEMU(t, "-chardev", "socket,id=m2,path="+second+",server=on,wait=off",
		"-mon", "chardev=m2,mode=control")
	c, other := connect(t, sock), connect(t, second)
	ctx := testContext(t)
	for _, name := range []string{"src", "dst", "bad0"} {
		mustExec(t, c, "blockdev-add", map[string]any{
			"driver": "null-co", "node-name": name, "size": 1 << 30, "read-zeroes": false})
	}
	// Writes fail half way: the job is seen running first.
	mustExec(t, c, "blockdev-add", map[string]any{
		"driver": "blkdebug", "node-name": "bad", "image": "bad0",
		"inject-error": []any{map[string]any{"event": "pwritev", "errno": 5, "sector": 1 << 20}}})
	for _, tc := range []struct {
		name, command, target, at, verb string
		args                            map[string]any
		complete                        bool
		wantErr                         string
	}{
		{"Finalized", "blockdev-backup", "dst", "pending", "job-finalize", map[string]any{"auto-finalize": false}, false, ""},
		{"Dismissed", "blockdev-backup", "dst", "concluded", "job-dismiss", map[string]any{"auto-dismiss": false}, false, ""},
		{"DismissedFailed", "blockdev-backup", "bad", "concluded", "job-dismiss", map[string]any{"auto-dismiss": false}, false, "Input/output error"},
		{"Completed", "blockdev-mirror", "dst", "ready", "job-complete", nil, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "j" + tc.name
			w := c.WatchJob(id)
			defer w.Close()
			// A second at this speed: Wait finds the job running, and
			// reports each later status before it acts on it.
			args := map[string]any{"job-id": id, "device": "src", "target": tc.target, "sync": "full", "speed": 1 << 30}
			for k, v := range tc.args {
				args[k] = v
			}
			mustExec(t, c, tc.command, args)
			var s statuses
			acted := false
			info, err := w.Wait(ctx, qmp.JobWaitOptions{Complete: tc.complete, OnUpdate: func(info qmp.JobInfo) {
				s.update(info)
				if info.Status == tc.at && !acted {
					// Before Wait's own command: it found the job in
					// this status, and will send tc.verb.
					acted = true
					mustExec(t, other, tc.verb, map[string]any{"id": id})
				}
			}})
			if !acted {
				t.Fatalf("never saw %s: %v", tc.at, s.names())
			}
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if want := map[bool]string{true: "job " + id + ": " + tc.wantErr}[tc.wantErr != ""]; gotErr != want || info.Status != "null" {
				t.Fatalf("Wait = %+v, %v; saw %v; want it ended with error %q", info, err, s.names(), want)
			}
		})
	}
}

// TestJobWaitCompleteRefusedInStandby: a mirror paused (ready to standby)
// between Wait's query and its job-complete may make QEMU refuse the
// complete; Wait must send it again once the mirror is ready again, not
// wait for ever for a completion it never got. QEMU 7.2 takes
// job-complete in standby, so it cannot be made to refuse it: a fake
// server does, with the refusal of a QEMU that does not.
func TestJobWaitCompleteRefusedInStandby(t *testing.T) {
	s := fakeServer(t, func(c *qmptest.Conn) {
		if !negotiated(c) {
			return
		}
		status, refused := "running", false
		change := func(to string) {
			status = to
			c.Event("JOB_STATUS_CHANGE", map[string]any{"id": "j0", "status": to})
		}
		for {
			req, err := c.ReadRequest()
			if err != nil {
				return
			}
			switch req.Execute {
			case "query-jobs":
				jobs := []any{}
				if status != "null" {
					jobs = append(jobs, map[string]any{"id": "j0", "type": "mirror", "status": status,
						"current-progress": 2, "total-progress": 2})
				}
				c.Reply(req.ID, jobs)
				switch status {
				case "running": // caught up
					change("ready")
				case "standby": // resumed, after the refusal's query
					change("ready")
				}
			case "job-complete":
				if !refused {
					// Paused since Wait's query: QEMU refuses.
					refused = true
					change("standby")
					c.ReplyError(req.ID, "GenericError", "Job 'j0' in state 'standby' cannot accept command verb 'complete'")
					continue
				}
				change("concluded")
				change("null")
				c.Reply(req.ID, nil)
			default:
				c.ReplyError(req.ID, "CommandNotFound", "The command "+req.Execute+" has not been found")
			}
		}
	})
	c := connect(t, s.Addr)
	w := c.WatchJob("j0")
	defer w.Close()
	var seen statuses
	info, err := w.Wait(testContext(t), qmp.JobWaitOptions{Complete: true, OnUpdate: seen.update})
	// running shows only if Wait reports it before the ready after it
	// arrives.
	got, want := seen.names(), []string{"ready", "standby", "ready", "concluded", "null"}
	if len(got) > 0 && got[0] == "running" {
		got = got[1:]
	}
	if err != nil || info.Status != "null" || !slices.Equal(got, want) {
		t.Fatalf("Wait = %+v, %v; saw %v; want %v", info, err, seen.names(), want)
	}
}
