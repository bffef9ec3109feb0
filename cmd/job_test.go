package cmd

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// gib is the size of the null-co nodes: at jobSpeed a job takes about
// two seconds, long enough to be seen running.
const (
	gib      = 1 << 30
	jobSpeed = "536870912"
)

// jobVM starts QEMU with null-co nodes src and dst, a node bad that
// fails every write, and monitors beyond the first (each serves one
// client at a time); it returns their addresses, the first first.
func jobVM(t *testing.T, monitors int) []string {
	t.Helper()
	dir := ptyShortTempDir(t)
	var extra, socks []string
	for i := 1; i < monitors; i++ {
		p := filepath.Join(dir, "m"+string(rune('0'+i))+".sock")
		id := "mon" + string(rune('0'+i))
		extra = append(extra, "-chardev", "socket,id="+id+",path="+p+",server=on,wait=off", "-mon", "chardev="+id+",mode=control")
		socks = append(socks, p)
	}
	first := qmptest.StartQEMU(t, extra...)
	for _, n := range []string{"src", "dst", "bad0"} {
		run(t, "", "exec", "-s", first, "blockdev-add", "driver=null-co", "node-name="+n,
			"size=1073741824", "read-zeroes=false").mustExit(t, ExitOK)
	}
	run(t, "", "exec", "-s", first, "blockdev-add", "driver=blkdebug", "node-name=bad", "image=bad0",
		`inject-error=[{"event": "pwritev", "errno": 5}]`).mustExit(t, ExitOK)
	return append([]string{first}, socks...)
}

// jobLine is a line of job wait's piped output: a status or the outcome.
type jobLine struct {
	ID              string
	Type            string
	Status          string
	Outcome         string
	Error           string
	CurrentProgress int64 `json:"current-progress"`
	TotalProgress   int64 `json:"total-progress"`
}

// jobLines parses every line of stdout as JSON: the statuses, then the
// outcome last.
func jobLines(t *testing.T, stdout string) (statuses []string, outcome jobLine) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	for i, l := range lines {
		var j jobLine
		if err := json.Unmarshal([]byte(l), &j); err != nil {
			t.Fatalf("stdout line %d is not JSON: %q (%v)", i+1, l, err)
		}
		if i == len(lines)-1 {
			if j.Outcome == "" {
				t.Fatalf("last line %q has no outcome", l)
			}
			return statuses, j
		}
		if j.Status == "" || j.Outcome != "" {
			t.Fatalf("line %d %q is not a status", i+1, l)
		}
		statuses = append(statuses, j.Status)
	}
	return nil, jobLine{}
}

func TestJobWait(t *testing.T) {
	socks := jobVM(t, 1)
	sock := socks[0]

	t.Run("BackupPiped", func(t *testing.T) {
		run(t, "", "exec", "-s", sock, "blockdev-backup", "job-id=b0", "device=src", "target=dst",
			"sync=full", "speed="+jobSpeed).mustExit(t, ExitOK)
		r := run(t, "", "job", "wait", "-s", sock, "b0")
		r.mustExit(t, ExitOK)
		statuses, out := jobLines(t, r.stdout)
		if out != (jobLine{ID: "b0", Outcome: "completed", CurrentProgress: gib, TotalProgress: gib}) ||
			statuses[0] != "running" || !slices.Contains(statuses, "concluded") || r.stderr != "" {
			t.Fatalf("statuses %v, outcome %+v, stderr %q", statuses, out, r.stderr)
		}
	})
	t.Run("FailureIsStatus1WithQEMUsError", func(t *testing.T) {
		r := run(t, "", "exec", "-s", sock, "--wait-job", "blockdev-backup", "job-id=f0", "device=src",
			"target=bad", "sync=full")
		if r.code != ExitQMPError || r.stderr != "qmpsh: job f0: Input/output error\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		first, rest, _ := strings.Cut(r.stdout, "\n")
		if first != "{}" {
			t.Fatalf("first line %q, want the command's return value", first)
		}
		if _, out := jobLines(t, rest); out.Outcome != "failed" || out.Error != "Input/output error" {
			t.Fatalf("outcome %+v", out)
		}
	})
	t.Run("ExecWaitJobManualFinalizeAndDismiss", func(t *testing.T) {
		r := run(t, "", "exec", "-s", sock, "--wait-job", "blockdev-backup", "job-id=d0", "device=src",
			"target=dst", "sync=full", "auto-finalize=false", "auto-dismiss=false")
		r.mustExit(t, ExitOK)
		_, rest, _ := strings.Cut(r.stdout, "\n")
		statuses, out := jobLines(t, rest)
		if out.Outcome != "completed" || !slices.Contains(statuses, "pending") || !slices.Contains(statuses, "concluded") {
			t.Fatalf("statuses %v, outcome %+v", statuses, out)
		}
		// Dismissed: nothing left to list.
		run(t, "", "job", "list", "-s", sock).expect(t, ExitOK, "", "")
	})
	t.Run("ExecWaitJobRawJSON", func(t *testing.T) {
		r := run(t, "", "exec", "-s", sock, "--wait-job",
			`{"execute": "blockdev-backup", "arguments": {"job-id": "r0", "device": "src", "target": "dst", "sync": "full"}}`)
		r.mustExit(t, ExitOK)
		_, rest, _ := strings.Cut(r.stdout, "\n")
		if _, out := jobLines(t, rest); out.ID != "r0" || out.Outcome != "completed" {
			t.Fatalf("outcome %+v", out)
		}
	})
	t.Run("BlockdevCreateIsDismissed", func(t *testing.T) {
		// Not a block job (no BLOCK_JOB_* events), and QEMU leaves it
		// concluded until dismissed.
		img := filepath.Join(t.TempDir(), "c0.img")
		r := run(t, "", "exec", "-s", sock, "--wait-job", "blockdev-create", "job-id=c0",
			`options={"driver": "file", "filename": "`+img+`", "size": 1048576}`)
		r.mustExit(t, ExitOK)
		if fi, err := os.Stat(img); err != nil || fi.Size() != 1048576 {
			t.Fatalf("created %v, %v", fi, err)
		}
		bad := filepath.Join(t.TempDir(), "missing", "c1.img")
		r = run(t, "", "exec", "-s", sock, "--wait-job", "blockdev-create", "job-id=c1",
			`options={"driver": "file", "filename": "`+bad+`", "size": 1048576}`)
		want := "qmpsh: job c1: Could not create '" + bad + "': No such file or directory\n"
		if r.code != ExitQMPError || r.stderr != want {
			t.Fatalf("exit %d, stdout %q, stderr %q; want %q", r.code, r.stdout, r.stderr, want)
		}
		run(t, "", "job", "list", "-s", sock).expect(t, ExitOK, "", "")
	})
	t.Run("CompleteMirrorAtReady", func(t *testing.T) {
		run(t, "", "exec", "-s", sock, "blockdev-mirror", "job-id=m0", "device=src", "target=dst",
			"sync=full", "speed="+jobSpeed).mustExit(t, ExitOK)
		r := run(t, "", "job", "wait", "-s", sock, "--complete", "m0")
		r.mustExit(t, ExitOK)
		statuses, out := jobLines(t, r.stdout)
		if i, j := slices.Index(statuses, "ready"), slices.Index(statuses, "concluded"); i < 0 || j < i || out.Outcome != "completed" {
			t.Fatalf("statuses %v, outcome %+v; want ready, then concluded", statuses, out)
		}
	})
	t.Run("TimeoutIsStatus4", func(t *testing.T) {
		// Without --complete a mirror stays ready until someone acts.
		run(t, "", "exec", "-s", sock, "blockdev-mirror", "job-id=t0", "device=src", "target=dst",
			"sync=full").mustExit(t, ExitOK)
		defer run(t, "", "exec", "-s", sock, "job-cancel", "id=t0")
		r := run(t, "", "job", "wait", "-s", sock, "t0", "--timeout", "500ms")
		if r.code != ExitTimeout || r.stderr != "qmpsh: job t0: timed out after 500ms waiting; the job goes on\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		if _, out := jobLines(t, r.stdout); out.Outcome != "timeout" {
			t.Fatalf("outcome %+v", out)
		}
	})
	t.Run("NoSuchJob", func(t *testing.T) {
		r := run(t, "", "job", "wait", "-s", sock, "nope")
		if r.code != ExitQMPError || r.stderr != "qmpsh: job nope: no such job (QEMU lists none; one that ended is gone unless started with auto-dismiss=false)\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("Usage", func(t *testing.T) {
		for _, args := range [][]string{
			{"job", "wait", "-s", sock},
			{"job", "wait", "-s", sock, "a", "b"},
			{"job"},
			{"job", "list", "x"},
			{"exec", "-s", sock, "--wait-job", "query-status"},
			{"exec", "-s", sock, "--wait-job", "--wait-event", "X", "blockdev-backup", "job-id=x"},
			{"exec", "-s", sock, "--match", "device=x", "query-status"},
			{"exec", "-s", sock, "--wait-event", "X", "--match", "nokey", "query-status"},
			{"events", "-s", sock, "--match", "a..b=1"},
			{"events", "-s", sock, "--match", "a=[1"},
		} {
			if r := run(t, "", args...); r.code != ExitUsage || r.stdout != "" {
				t.Errorf("%v: exit %d, stdout %q, stderr %q; want a usage error", args, r.code, r.stdout, r.stderr)
			}
		}
	})
}

// TestJobWaitInterrupt: Ctrl-C stops the wait and leaves the job alone,
// unless --cancel-on-interrupt.
func TestJobWaitInterrupt(t *testing.T) {
	sock := jobVM(t, 1)[0]
	wait := func(t *testing.T, id string, flags ...string) (code int, stdout, stderr string) {
		t.Helper()
		// The first status is reported once the wait listens for Ctrl-C.
		return runInterrupted(t, sock, `"status":"ready"`, append([]string{"job", "wait", id}, flags...)...)
	}
	run(t, "", "exec", "-s", sock, "blockdev-mirror", "job-id=i0", "device=src", "target=dst",
		"sync=full").mustExit(t, ExitOK)

	code, stdout, stderr := wait(t, "i0")
	if _, out := jobLines(t, stdout); code != ExitInterrupted || out.Outcome != "interrupted" ||
		stderr != "qmpsh: interrupted: stopped waiting; job i0 goes on\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	r := run(t, "", "job", "list", "-s", sock)
	if r.code != ExitOK || !strings.Contains(r.stdout, `"id":"i0"`) || !strings.Contains(r.stdout, `"status":"ready"`) {
		t.Fatalf("after the interrupt: job list = %d %q %q, want i0 still ready", r.code, r.stdout, r.stderr)
	}

	code, stdout, stderr = wait(t, "i0", "--cancel-on-interrupt")
	if _, out := jobLines(t, stdout); code != ExitQMPError || out.Outcome != "cancelled" ||
		stderr != "qmpsh: interrupted: cancelling job i0\nqmpsh: job i0: cancelled\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	run(t, "", "job", "list", "-s", sock).expect(t, ExitOK, "", "")

	// SIGTERM and SIGHUP (a service manager, a closed terminal) end the
	// wait as Ctrl-C does, the last line saying so, with the status of
	// a process the signal ended; and they too cancel under
	// --cancel-on-interrupt.
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			id := "s" + strconv.Itoa(int(sig))
			run(t, "", "exec", "-s", sock, "blockdev-mirror", "job-id="+id, "device=src", "target=dst",
				"sync=full").mustExit(t, ExitOK)
			code, stdout, stderr := runSignalled(t, sig, sock, `"status":"ready"`, "job", "wait", id)
			if _, out := jobLines(t, stdout); code != 128+int(sig) || out.Outcome != "interrupted" ||
				stderr != "qmpsh: interrupted: stopped waiting; job "+id+" goes on\n" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d and the interrupted outcome", code, stdout, stderr, 128+int(sig))
			}
			code, stdout, stderr = runSignalled(t, sig, sock, `"status":"ready"`, "job", "wait", id, "--cancel-on-interrupt")
			if _, out := jobLines(t, stdout); code != ExitQMPError || out.Outcome != "cancelled" {
				t.Fatalf("--cancel-on-interrupt: exit %d, stdout %q, stderr %q; want the job cancelled", code, stdout, stderr)
			}
		})
	}
}

// TestCancelOnInterruptRefusedByPolicy: through a proxy that refuses
// job-cancel, Ctrl-C under --cancel-on-interrupt cannot cancel a job that
// goes on (a mirror, ready until someone acts): the wait stops as it
// would without the flag (130, the job goes on), with the refusal on
// stderr, instead of following the job for as long as it runs.
func TestCancelOnInterruptRefusedByPolicy(t *testing.T) {
	qemu := jobVM(t, 1)[0]
	run(t, "", "exec", "-s", qemu, "blockdev-mirror", "job-id=p0", "device=src", "target=dst",
		"sync=full").mustExit(t, ExitOK)
	defer run(t, "", "exec", "-s", qemu, "job-cancel", "id=p0")
	for _, tc := range []struct{ flag, refusal string }{
		{"--read-only", "--read-only lets only commands that read through"},
		{"--deny=job-cancel", "it matches --deny 'job-cancel'"},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			p := startProxyCmd(t, qemu, tc.flag)
			// --timeout only as a watchdog: a wait that follows the
			// ready mirror ends there, with 4.
			code, stdout, stderr := runInterrupted(t, p.path, `"status":"ready"`,
				"job", "wait", "p0", "--cancel-on-interrupt", "--timeout", "1m")
			want := "qmpsh: interrupted: cancelling job p0\n" +
				"qmpsh: job p0: not cancelled (GenericError: command 'job-cancel' is refused by the proxy: " + tc.refusal + "); its status: ready\n" +
				"qmpsh: interrupted: stopped waiting; job p0 goes on\n"
			if _, out := jobLines(t, stdout); code != ExitInterrupted || out.Outcome != "interrupted" || stderr != want {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 130, interrupted, stderr %q", code, stdout, stderr, want)
			}
			r := run(t, "", "job", "list", "-s", p.path) // the proxy has the monitor
			if r.code != ExitOK || !strings.Contains(r.stdout, `"id":"p0"`) || !strings.Contains(r.stdout, `"status":"ready"`) {
				t.Fatalf("after the interrupt: job list = %d %q %q, want p0 still ready", r.code, r.stdout, r.stderr)
			}
		})
	}
}

func TestJobList(t *testing.T) {
	sock := jobVM(t, 1)[0]
	run(t, "", "exec", "-s", sock, "blockdev-backup", "job-id=l0", "device=src", "target=bad",
		"sync=full", "auto-dismiss=false").mustExit(t, ExitOK)
	// The failed job stays, concluded, until dismissed.
	r := run(t, "", "job", "list", "-s", sock)
	var j qmp.JobInfo
	if r.code != ExitOK || strings.Count(r.stdout, "\n") != 1 || json.Unmarshal([]byte(r.stdout), &j) != nil ||
		j != (qmp.JobInfo{ID: "l0", Type: "backup", Status: "concluded", TotalProgress: gib, Error: "Input/output error"}) {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	var out qmptest.Buffer
	ios := &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: io.Discard, OutTTY: true}
	if code := Main([]string{"job", "list", "-s", sock}, ios); code != ExitOK {
		t.Fatalf("on a terminal: exit %d", code)
	}
	want := "ID  TYPE    STATUS     PROGRESS  ERROR\nl0  backup  concluded  0.0%      Input/output error\n"
	if out.String() != want {
		t.Fatalf("on a terminal:\n%s\nwant\n%s", out.String(), want)
	}
}

// TestMatchPicksItsJob: of two jobs started together, --match waits for
// the completion of the one it names, though the other's comes first.
func TestMatchPicksItsJob(t *testing.T) {
	socks := jobVM(t, 3)
	sock, second, third := socks[0], socks[1], socks[2]

	// Every completion, in order, from the second monitor; the slow
	// one's only from the third.
	all, matched := newNegotiated(), newNegotiated()
	var allOut, matchedOut qmptest.Buffer
	allDone := all.start(t, &allOut, "events", "-s", second, "--name", "BLOCK_JOB_COMPLETED", "--count", "2")
	matchedDone := matched.start(t, &matchedOut, "events", "-s", third, "--name", "BLOCK_JOB_COMPLETED",
		"--match", "device=slow", "--count", "1")
	<-all.ready
	<-matched.ready

	r := run(t, "", "exec", "-s", sock, "--wait-event", "BLOCK_JOB_COMPLETED", "--match", "device=slow",
		"--match", "len=1073741824", "transaction",
		`actions=[{"type": "blockdev-backup", "data": {"job-id": "slow", "device": "src", "target": "dst", "sync": "full", "speed": `+jobSpeed+`}},
		          {"type": "blockdev-backup", "data": {"job-id": "fast", "device": "src", "target": "bad", "sync": "full"}}]`)
	r.mustExit(t, ExitOK)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 2 || lines[0] != "{}" {
		t.Fatalf("stdout %q", r.stdout)
	}
	var ev struct {
		Event string
		Data  struct{ Device, Error string }
	}
	if err := json.Unmarshal([]byte(lines[1]), &ev); err != nil || ev.Event != "BLOCK_JOB_COMPLETED" || ev.Data.Device != "slow" || ev.Data.Error != "" {
		t.Fatalf("event %q, want the slow job's completion", lines[1])
	}

	if code := <-allDone; code != ExitOK {
		t.Fatalf("events: exit %d, stderr %q", code, all.String())
	}
	if code := <-matchedDone; code != ExitOK {
		t.Fatalf("events --match: exit %d, stderr %q", code, matched.String())
	}
	order := strings.Split(strings.TrimSuffix(allOut.String(), "\n"), "\n")
	if len(order) != 2 || !strings.Contains(order[0], `"device":"fast"`) || !strings.Contains(order[1], `"device":"slow"`) {
		t.Fatalf("completions %q: the test needs the fast job's first", allOut.String())
	}
	if m := matchedOut.String(); strings.Count(m, "\n") != 1 || !strings.Contains(m, `"device":"slow"`) {
		t.Fatalf("events --match device=slow printed %q", m)
	}
}

// queryServer is a fake QEMU that answers every command with {} but
// query-jobs and query-migrate, which it hands to answer; it hangs up
// after an answer that says so.
func queryServer(t *testing.T, answer func(*qmptest.Conn, *qmptest.Request) (hangUp bool)) *qmptest.Server {
	s := qmptest.NewServer(func(c *qmptest.Conn) {
		c.Greet()
		for {
			req, err := c.ReadRequest()
			if err != nil {
				return
			}
			if req.Execute != "query-jobs" && req.Execute != "query-migrate" {
				c.Reply(req.ID, map[string]any{})
			} else if answer(c, req) {
				c.Close()
				return
			}
		}
	})
	t.Cleanup(s.Close)
	return s
}

// replyJobRunning answers req with one running job, j0.
func replyJobRunning(c *qmptest.Conn, req *qmptest.Request) {
	c.Reply(req.ID, []any{map[string]any{"id": "j0", "type": "backup", "status": "running",
		"current-progress": 1, "total-progress": 2}})
}

// TestWaitConnectionLost: a QEMU that goes away mid-wait is exit status
// 3 for job wait and migrate --wait, with the outcome line. QEMU cannot
// be made to drop one monitor, so a fake server does.
func TestWaitConnectionLost(t *testing.T) {
	s := queryServer(t, func(c *qmptest.Conn, req *qmptest.Request) bool {
		if req.Execute == "query-migrate" {
			c.Reply(req.ID, map[string]any{"status": "active"})
		} else {
			replyJobRunning(c, req)
		}
		return true
	})
	for _, args := range [][]string{{"job", "wait", "-s", s.Addr, "j0"}, {"migrate", "-s", s.Addr, "exec:x", "--wait"}} {
		r := run(t, "", args...)
		want := "qmpsh: " + s.Addr + ": connection lost while waiting for events: connection closed by peer\n"
		last := r.stdout[strings.LastIndex(strings.TrimSuffix(r.stdout, "\n"), "\n")+1:]
		if r.code != ExitConnection || r.stderr != want || !strings.Contains(last, `"outcome":"disconnected"`) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
}

// TestJobWaitGoneBeforeQuery: a job that ended before job wait's first
// query (its events came before query-jobs' reply, which no longer lists
// it) is followed through those events; its lines leave out the type,
// which nothing showed, rather than print it empty.
func TestJobWaitGoneBeforeQuery(t *testing.T) {
	s := queryServer(t, func(c *qmptest.Conn, req *qmptest.Request) bool {
		for _, status := range []string{"concluded", "null"} {
			c.Event("JOB_STATUS_CHANGE", map[string]any{"id": "j0", "status": status})
		}
		c.Reply(req.ID, []any{})
		return false
	})
	r := run(t, "", "job", "wait", "-s", s.Addr, "j0")
	if r.code != ExitOK || strings.Contains(r.stdout, `"type"`) || !strings.Contains(r.stdout, `"status":"concluded"`) ||
		!strings.Contains(r.stdout, `"outcome":"completed"`) {
		t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestWaitConnectionLostMidQuery: QEMU going away while job wait is
// about to ask about a status change (QEMU killed with SIGTERM cancels
// its jobs first) says the connection was lost and why, not the client's
// internal state.
func TestWaitConnectionLostMidQuery(t *testing.T) {
	s := queryServer(t, func(c *qmptest.Conn, req *qmptest.Request) bool {
		replyJobRunning(c, req)
		c.Event("JOB_STATUS_CHANGE", map[string]any{"id": "j0", "status": "aborting"})
		return true
	})
	r := run(t, "", "job", "wait", "-s", s.Addr, "j0")
	if r.code != ExitConnection || !strings.Contains(r.stderr, "connection lost") ||
		strings.Contains(r.stderr, "Disconnect()") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestExecWaitJobCancelOnInterrupt: exec --wait-job takes
// --cancel-on-interrupt as job wait does (and only with --wait-job).
func TestExecWaitJobCancelOnInterrupt(t *testing.T) {
	sock := jobVM(t, 1)[0]
	run(t, "", "exec", "-s", sock, "--cancel-on-interrupt", "query-status").mustExit(t, ExitUsage)
	code, stdout, stderr := runInterrupted(t, sock, `"status":"ready"`, "exec", "--wait-job", "--cancel-on-interrupt",
		"blockdev-mirror", "job-id=x0", "device=src", "target=dst", "sync=full")
	// The first line is blockdev-mirror's return value.
	_, outcome := jobLines(t, stdout[strings.Index(stdout, "\n")+1:])
	if code != ExitQMPError || outcome.Outcome != "cancelled" || !strings.Contains(stderr, "cancelling job x0") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	run(t, "", "job", "list", "-s", sock).expect(t, ExitOK, "", "")
}

// runInterrupted runs qmpsh with args on sock, reading its stdout line by
// line, and raises Ctrl-C once a line contains mark (a status the wait
// reports once it listens for Ctrl-C). It returns the exit status and
// the whole output.
func runInterrupted(t *testing.T, sock, mark string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runSignalled(t, os.Interrupt, sock, mark, args...)
}

// runSignalled is runInterrupted with sig for Ctrl-C.
func runSignalled(t *testing.T, sig os.Signal, sock, mark string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	sigs := &fakeSignals{}
	outR, outW := io.Pipe()
	var errOut qmptest.Buffer
	f := testFactory(strings.NewReader(""), outW, &errOut, map[string]string{"QMP_SOCKET": sock}, sigs)
	done := make(chan int, 1)
	go func() {
		done <- Execute(f, args)
		outW.Close()
	}()
	lines := bufio.NewScanner(outR)
	var out strings.Builder
	for lines.Scan() {
		out.WriteString(lines.Text() + "\n")
		if strings.Contains(lines.Text(), mark) {
			break
		}
	}
	if n := sigs.raise(sig); n != 1 {
		t.Fatalf("%v reached %d subscribers, want 1", sig, n)
	}
	for lines.Scan() {
		out.WriteString(lines.Text() + "\n")
	}
	return <-done, out.String(), errOut.String()
}

// TestCancelOnInterruptAsTheJobEnds: Ctrl-C under --cancel-on-interrupt
// that comes as the job ends (here concluded, auto-dismiss=false) finds
// QEMU refusing job-cancel; the wait goes on and reports the job's own
// end, not the refusal as a failure. QEMU cannot be timed that finely,
// so a fake one holds the reply to the request in flight when Ctrl-C
// comes until job-cancel arrives, and runs it first, as QEMU would have.
func TestCancelOnInterruptAsTheJobEnds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		start   string // j0's status at first
		hold    string // the request held: the first of its kind after the start
		refusal string
	}{
		// job wait was dismissing it: by job-cancel, the job is gone.
		{"Dismissing", "concluded", "job-dismiss", "Job not found"},
		// job wait was asking about its status change: the job waits,
		// concluded, for a dismiss the interrupted wait did not send.
		{"AskingAboutConcluded", "running", "query-jobs", "Job 'j0' in state 'concluded' cannot accept command verb 'cancel'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ready := make(chan struct{})
			status := tc.start
			s := qmptest.NewServer(func(c *qmptest.Conn) {
				c.Greet()
				var held *qmptest.Request
				queries, holding := 0, true
				do := func(req *qmptest.Request) {
					switch req.Execute {
					case "query-jobs":
						jobs := []any{}
						if status != "null" {
							jobs = append(jobs, map[string]any{"id": "j0", "type": "backup", "status": status,
								"current-progress": 2, "total-progress": 2})
						}
						c.Reply(req.ID, jobs)
						if queries++; queries == 1 && status == "running" {
							status = "concluded"
							c.Event("JOB_STATUS_CHANGE", map[string]any{"id": "j0", "status": status})
						}
					case "job-dismiss":
						status = "null"
						c.Event("JOB_STATUS_CHANGE", map[string]any{"id": "j0", "status": status})
						c.Reply(req.ID, nil)
					case "job-cancel":
						c.ReplyError(req.ID, "GenericError", tc.refusal)
					default:
						c.Reply(req.ID, nil)
					}
				}
				for {
					req, err := c.ReadRequest()
					if err != nil {
						return
					}
					switch {
					case held != nil:
						do(held) // QEMU ran it before this request
						do(req)
						held = nil
					case holding && req.Execute == tc.hold && (tc.hold != "query-jobs" || queries == 1):
						held, holding = req, false
						close(ready)
					default:
						do(req)
					}
				}
			})
			t.Cleanup(s.Close)
			code, stdout, stderr := runInterruptedWhen(t, s.Addr, ready, "job", "wait", "j0", "--cancel-on-interrupt")
			_, out := jobLines(t, stdout)
			want := "qmpsh: interrupted: cancelling job j0\nqmpsh: job j0: not cancelled (GenericError: " + tc.refusal + "); waiting for its end\n"
			if code != ExitOK || out.Outcome != "completed" || stderr != want {
				t.Fatalf("exit %d, stdout %q, stderr %q; want completed, stderr %q", code, stdout, stderr, want)
			}
		})
	}
}

// runInterruptedWhen runs qmpsh with args on sock and raises Ctrl-C once
// ready is closed (by a fake server, when the request it holds came).
// It returns the exit status and the whole output.
func runInterruptedWhen(t *testing.T, sock string, ready <-chan struct{}, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	sigs := &fakeSignals{}
	var out, errOut qmptest.Buffer
	f := testFactory(strings.NewReader(""), &out, &errOut, map[string]string{"QMP_SOCKET": sock}, sigs)
	done := make(chan int, 1)
	go func() { done <- Execute(f, args) }()
	select {
	case <-ready:
	case code := <-done:
		t.Fatalf("exit %d before the interrupt; stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	if n := sigs.raise(os.Interrupt); n != 1 {
		t.Fatalf("Ctrl-C reached %d subscribers, want 1", n)
	}
	return <-done, out.String(), errOut.String()
}
