package qmp_test

// The client sends a request without an id when its reply cannot be
// confused with another's (see Client.register), and every request
// without a newline after it. These tests hold it to the cases where an
// id is kept, and check that every server qmpsh talks to accepts what it
// sends.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/protocol"
	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// TestIDlessLoneCall: a lone call goes without an id; its id-less reply,
// a return or an error, is its own, and the session goes on.
func TestIDlessLoneCall(t *testing.T) {
	ids := make(chan json.RawMessage, 4)
	s := fakeServer(t, echoUntil(func(c *qmptest.Conn, req *qmptest.Request) bool {
		ids <- req.ID
		if req.Execute == "fail" {
			return c.ReplyError(req.ID, "GenericError", "failed as asked") == nil
		}
		return c.Reply(req.ID, req.Execute) == nil
	}))
	c := connect(t, s.Addr)
	ctx := testContext(t)
	if ret, err := c.Execute(ctx, "one", nil); err != nil || string(ret) != `"one"` {
		t.Fatalf("Execute(one) = %s, %v", ret, err)
	}
	_, err := c.Execute(ctx, "fail", nil)
	var ee *qmp.ExecuteError
	if !errors.As(err, &ee) || ee.Desc != "failed as asked" {
		t.Fatalf("Execute(fail) = %v, want the ExecuteError", err)
	}
	if ret, err := c.Execute(ctx, "two", map[string]int{"x": 1}); err != nil || string(ret) != `"two"` {
		t.Fatalf("Execute(two) = %s, %v", ret, err)
	}
	for i := range 3 {
		if id := <-ids; id != nil {
			t.Errorf("request %d had id %s, want none", i, id)
		}
	}
}

// TestIDlessNotWhenConcurrent: of two requests in flight at once, at most
// one goes without an id, and each call gets its own reply, answered in
// order as QEMU does.
func TestIDlessNotWhenConcurrent(t *testing.T) {
	bad := make(chan string, 100)
	s := fakeServer(t, echoUntil(func(c *qmptest.Conn, req *qmptest.Request) bool {
		// Read a second request before answering the first: both are
		// in flight.
		second, err := c.ReadRequest()
		if err != nil {
			return false
		}
		if req.ID == nil && second.ID == nil {
			bad <- fmt.Sprintf("%s and %s both went without an id", req.Execute, second.Execute)
		}
		return c.Reply(req.ID, req.Execute) == nil && c.Reply(second.ID, second.Execute) == nil
	}))
	c := connect(t, s.Addr)
	ctx := testContext(t)
	for round := range 50 {
		var wg sync.WaitGroup
		for _, name := range []string{"a", "b"} {
			wg.Go(func() {
				if ret, err := c.Execute(ctx, name, nil); err != nil || string(ret) != `"`+name+`"` {
					bad <- fmt.Sprintf("round %d: Execute(%s) = %s, %v", round, name, ret, err)
				}
			})
		}
		wg.Wait()
	}
	close(bad)
	for msg := range bad {
		t.Error(msg)
	}
}

// TestIDlessBesideIDs: a call goes without an id as soon as no call sent
// without one is pending, though others with ids are: of 8 callers
// sharing the client, every other request is id-less. The server reads a
// request before it answers the one before, so that two are in flight
// all along, and checks that never two of them are id-less; each call
// gets its own reply.
func TestIDlessBesideIDs(t *testing.T) {
	const callers, calls = 8, 200
	type count struct{ beside, both int }
	counted := make(chan count, 1)
	s := fakeServer(t, func(c *qmptest.Conn) {
		if !negotiated(c) {
			return
		}
		var n count
		defer func() { counted <- n }()
		var held []*qmptest.Request
		for read := 0; read < calls || len(held) > 0; {
			if read < calls && len(held) < 2 {
				req, err := c.ReadRequest()
				if err != nil {
					return
				}
				read++
				if req.ID == nil && len(held) > 0 {
					if held[0].ID == nil {
						n.both++
					} else {
						n.beside++
					}
				}
				held = append(held, req)
				continue
			}
			if c.Reply(held[0].ID, held[0].Execute) != nil {
				return
			}
			held = held[1:]
		}
	})
	c := connect(t, s.Addr)
	ctx := testContext(t)
	// The callers share the calls, so that two callers are busy until
	// the last call: the server answers one only once another came.
	var next atomic.Int64
	bad := make(chan string, callers)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for i := next.Add(1); i <= calls; i = next.Add(1) {
				name := fmt.Sprintf("call%d", i)
				if ret, err := c.Execute(ctx, name, nil); err != nil || string(ret) != `"`+name+`"` {
					bad <- fmt.Sprintf("Execute(%s) = %s, %v", name, ret, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(bad)
	for msg := range bad {
		t.Error(msg)
	}
	var n count
	select {
	case n = <-counted:
	case <-ctx.Done():
		t.Fatal("the server did not get every call")
	}
	if n.both != 0 {
		t.Errorf("%d requests went without an id while another id-less one was in flight", n.both)
	}
	// The first request goes alone; then, as replies come in order,
	// every other one finds the id-less slot free.
	if want := calls/2 - 1; n.beside < want {
		t.Errorf("%d requests went without an id beside one with an id, want %d", n.beside, want)
	}
}

// TestExecuteRefusesWhatQEMURefuses: a request QEMU cannot parse (a key
// given twice, through a json.RawMessage; a noncharacter in the name,
// which Go's encoder keeps) is refused unsent. QEMU would answer it with
// an error without an id, which the call in flight without one would
// take as its own. The session goes on.
func TestExecuteRefusesWhatQEMURefuses(t *testing.T) {
	got := make(chan string, 4)
	s := fakeServer(t, echoUntil(func(c *qmptest.Conn, req *qmptest.Request) bool {
		got <- req.Execute
		return c.Reply(req.ID, req.Execute) == nil
	}))
	c := connect(t, s.Addr)
	ctx := testContext(t)
	_, err := c.Execute(ctx, "bad", json.RawMessage(`{"a":1,"a":2}`))
	if err == nil || !strings.Contains(err.Error(), `"bad" not sent`) || !strings.Contains(err.Error(), "duplicate key") {
		t.Fatalf("Execute(bad) = %v, want it refused unsent for its duplicate key", err)
	}
	_, err = c.Execute(ctx, "query-status\uffff", nil)
	if err == nil || !strings.Contains(err.Error(), `"query-status\uffff" not sent`) || !strings.Contains(err.Error(), "invalid UTF-8") {
		t.Fatalf("Execute(query-status\\uffff) = %v, want it refused unsent for its name", err)
	}
	if ret, err := c.Execute(ctx, "good", nil); err != nil || string(ret) != `"good"` {
		t.Fatalf("Execute(good) = %s, %v", ret, err)
	}
	if name := <-got; name != "good" {
		t.Fatalf("the server got %s, want only good", name)
	}
}

// TestIDlessCancelled: a call given up before its id-less reply came
// leaves the next call an id, so that the stale reply, which comes first,
// goes nowhere; once it has come, a lone call goes without an id again.
func TestIDlessCancelled(t *testing.T) {
	held := make(chan *qmptest.Request, 1)
	bad := make(chan string, 10)
	s := fakeServer(t, echoUntil(func(c *qmptest.Conn, req *qmptest.Request) bool {
		switch req.Execute {
		case "slow": // hold the reply until the next request
			held <- req
			return true
		case "next":
			if req.ID == nil {
				bad <- "the call after a cancelled one went without an id"
			}
			slow := <-held
			// QEMU answers in order: the stale reply first.
			return c.Reply(slow.ID, "stale") == nil && c.Reply(req.ID, "next") == nil
		case "last":
			if req.ID != nil {
				bad <- fmt.Sprintf("the lone call after the stale reply had id %s, want none", req.ID)
			}
		}
		return c.Reply(req.ID, req.Execute) == nil
	}))
	var logs qmptest.Buffer
	c := connect(t, s.Addr, qmp.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	ctx, cancel := context.WithCancel(testContext(t))
	// Cancel once the server holds the request, whose reply is then
	// still to come.
	go func() {
		req := <-held
		held <- req
		cancel()
	}()
	if _, err := c.Execute(ctx, "slow", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Execute(slow) = %v, want context.Canceled", err)
	}
	if ret, err := c.Execute(testContext(t), "next", nil); err != nil || string(ret) != `"next"` {
		t.Fatalf("Execute(next) = %s, %v, want \"next\"", ret, err)
	}
	if ret, err := c.Execute(testContext(t), "last", nil); err != nil || string(ret) != `"last"` {
		t.Fatalf("Execute(last) = %s, %v", ret, err)
	}
	close(bad)
	for msg := range bad {
		t.Error(msg)
	}
	if strings.Contains(logs.String(), "unknown id") {
		t.Errorf("the stale reply was logged as unknown:\n%s", logs.String())
	}
}

// TestIDKeptForOOBAndRaw: exec-oob, whose reply may overtake others, and
// raw messages always carry an id, even alone.
func TestIDKeptForOOBAndRaw(t *testing.T) {
	ids := make(chan json.RawMessage, 2)
	s := fakeServer(t, echoUntil(func(c *qmptest.Conn, req *qmptest.Request) bool {
		ids <- req.ID
		return c.Reply(req.ID, "ok") == nil
	}))
	c := connect(t, s.Addr)
	ctx := testContext(t)
	if _, err := c.ExecuteOOB(ctx, "x-oob", nil); err != nil {
		t.Fatal(err)
	}
	if id := <-ids; id == nil {
		t.Error("exec-oob went without an id")
	}
	reply, err := c.Raw(ctx, json.RawMessage(`{"execute":"raw"}`))
	if err != nil || string(reply) != `{"return":"ok"}` {
		t.Fatalf("Raw = %s, %v", reply, err)
	}
	if id := <-ids; id == nil {
		t.Error("a raw message went without an id")
	}
}

// TestServersTakeUnterminatedRequests: every server qmpsh talks to takes
// requests that follow each other without a newline, lone (no id) and
// eight at once (with ids).
func TestServersTakeUnterminatedRequests(t *testing.T) {
	servers := []struct {
		name, command string
		start         func(t *testing.T) (addr string, opts []qmp.Option)
	}{
		{"fake", "query-status", func(t *testing.T) (string, []qmp.Option) {
			return fakeServer(t, qmptest.Standard).Addr, nil
		}},
		{"qemu-system", "query-status", func(t *testing.T) (string, []qmp.Option) {
			return qmptest.StartQEMU(t), nil
		}},
		{"qemu-storage-daemon", "query-block-jobs", func(t *testing.T) (string, []qmp.Option) {
			return qmptest.StartStorageDaemon(t), nil
		}},
		{"qemu-ga", "guest-info", func(t *testing.T) (string, []qmp.Option) {
			return startGuestAgent(t), []qmp.Option{qmp.WithoutGreeting()}
		}},
	}
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			addr, opts := srv.start(t)
			var mu sync.Mutex
			var sent []string
			opts = append(opts, qmp.WithTrace(func(dir protocol.Direction, msg []byte) {
				if dir == protocol.Sent {
					mu.Lock()
					sent = append(sent, string(msg))
					mu.Unlock()
				}
			}))
			c := connect(t, addr, opts...)
			ctx := testContext(t)
			for range 3 {
				if _, err := c.Execute(ctx, srv.command, nil); err != nil {
					t.Fatal(err)
				}
			}
			errs := make(chan error, 8)
			for range 8 {
				go func() {
					_, err := c.Execute(ctx, srv.command, nil)
					errs <- err
				}()
			}
			for range 8 {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			want := `{"execute":"` + srv.command + `"}`
			if n := len(sent); n < 11 || sent[n-11] != want {
				t.Errorf("sent %q, want the first call after negotiating to be %s", sent, want)
			}
		})
	}
}

// startGuestAgent starts qemu-ga listening on a UNIX socket, which it
// takes by socket activation, so that the socket is ready before qemu-ga
// has started, and returns the socket's path. qemu-ga is killed and
// reaped when the test ends.
func startGuestAgent(t *testing.T) string {
	t.Helper()
	bin := qmptest.RequireQEMU(t, "qemu-ga")
	dir := shortTempDir(t)
	sock := filepath.Join(dir, "ga.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	defer ln.Close()
	f := nonblockingDup(t, ln)
	defer f.Close()
	// LISTEN_PID must be qemu-ga's own: the shell's, which exec keeps.
	cmd := exec.Command("sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"`,
		bin, "-m", "unix-listen", "-p", sock, "-t", dir)
	cmd.ExtraFiles = []*os.File{f}
	var out qmptest.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("output of qemu-ga:\n%s", out.String())
		}
	})
	return sock
}

// nonblockingDup returns a non-blocking duplicate of ln's descriptor for
// a child: see qmptest's nonblockingFile for why ln.File will not do.
func nonblockingDup(t *testing.T, ln *net.UnixListener) *os.File {
	t.Helper()
	rc, err := ln.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	var dupErr error
	if err := rc.Control(func(s uintptr) {
		syscall.ForkLock.RLock()
		defer syscall.ForkLock.RUnlock()
		if fd, dupErr = syscall.Dup(int(s)); dupErr == nil {
			syscall.CloseOnExec(fd)
			dupErr = syscall.SetNonblock(fd, true)
		}
	}); err != nil || dupErr != nil {
		t.Fatal(err, dupErr)
	}
	return os.NewFile(uintptr(fd), ln.Addr().String())
}

// shortTempDir is a temporary directory whose path leaves room for a
// socket's name (108 bytes at most), removed at the end.
func shortTempDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "qmpga")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestIDNotReusedWhileDue: the id of a call given up before its reply
// came is not given to another call until that reply has come, however
// many calls go meanwhile (ids cycle through a few small numbers).
func TestIDNotReusedWhileDue(t *testing.T) {
	held := make(chan *qmptest.Request, 1)
	bad := make(chan string, 100)
	calls := 0
	s := fakeServer(t, echoUntil(func(c *qmptest.Conn, req *qmptest.Request) bool {
		if req.ExecOOB == "slow" {
			held <- req
			return true
		}
		calls++
		switch {
		case calls <= 20:
			slow := <-held
			if string(req.ID) == string(slow.ID) {
				bad <- fmt.Sprintf("call %d has id %s, which the cancelled call's reply is due for", calls, req.ID)
			}
			held <- slow
		case calls == 21:
			slow := <-held
			if c.Reply(slow.ID, "stale") != nil {
				return false
			}
		}
		return c.Reply(req.ID, req.Execute) == nil
	}))
	c := connect(t, s.Addr)
	ctx, cancel := context.WithCancel(testContext(t))
	go func() {
		req := <-held
		held <- req
		cancel()
	}()
	if _, err := c.ExecuteOOB(ctx, "slow", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("ExecuteOOB(slow) = %v, want context.Canceled", err)
	}
	for i := range 25 {
		name := fmt.Sprintf("call%d", i)
		if ret, err := c.Execute(testContext(t), name, nil); err != nil || string(ret) != `"`+name+`"` {
			t.Fatalf("Execute(%s) = %s, %v", name, ret, err)
		}
	}
	close(bad)
	for msg := range bad {
		t.Error(msg)
	}
}

// TestWithoutOOB: the client leaves oob off when asked, though QEMU
// offers it, and says so when asked for exec-oob.
func TestWithoutOOB(t *testing.T) {
	var mu sync.Mutex
	var sent []string
	c := connect(t, qmptest.StartQEMU(t), qmp.WithoutOOB(), qmp.WithTrace(func(dir protocol.Direction, msg []byte) {
		if dir == protocol.Sent {
			mu.Lock()
			sent = append(sent, string(msg))
			mu.Unlock()
		}
	}))
	if _, err := c.ExecuteOOB(testContext(t), "migrate-pause", nil); !errors.Is(err, qmp.ErrOOBNotNegotiated) {
		t.Errorf("ExecuteOOB = %v, want ErrOOBNotNegotiated", err)
	}
	if _, err := c.Execute(testContext(t), "query-status", nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sent) == 0 || sent[0] != `{"execute":"qmp_capabilities"}` {
		t.Errorf("negotiated with %q, want no capability enabled", sent)
	}
}
