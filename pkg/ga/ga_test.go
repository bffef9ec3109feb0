package ga_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/qmpsh/qmpsh/pkg/ga"
	"github.com/qmpsh/qmpsh/pkg/ga/gatest"
	"github.com/qmpsh/qmpsh/pkg/protocol"
	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
	"github.com/qmpsh/qmpsh/pkg/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testCtx bounds a test that would otherwise hang on a broken agent.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func connect(t *testing.T, ctx context.Context, addr string) *ga.Client {
	t.Helper()
	c := ga.NewClient()
	if err := c.Connect(ctx, addr); err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Disconnect() })
	return c
}

// The channel holds an earlier request's unread reply and half a request
// when the client starts: the sync must skip the one and reset the
// agent's parser past the other, so the first call gets its own reply.
func TestSyncSkipsStaleBytes(t *testing.T) {
	a := gatest.StartAgent(t)
	ctx := testCtx(t)
	conn, err := net.Dial("unix", a.Path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte(`{"execute":"guest-info"}` + "\n" + `{"execute":"guest-file-op`)); err != nil {
		t.Fatal(err)
	}
	c := ga.NewClient()
	if err := c.ConnectConn(ctx, conn); err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer c.Disconnect()
	ret, err := c.Exec(ctx, "guest-ping", nil)
	if err != nil || string(ret) != "{}" {
		t.Fatalf("guest-ping = %s, %v; want {}", ret, err)
	}
}

// An earlier client left half a request in the agent's parser, which
// outlives the connection, and hung up.
func TestSyncAfterClientLeftHalfRequest(t *testing.T) {
	a := gatest.StartAgent(t)
	ctx := testCtx(t)
	conn, err := net.Dial("unix", a.Path)
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte(`{"execute":"guest-exec","arguments":{"path":`))
	conn.Close()
	c := connect(t, ctx, a.Path)
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatalf("guest-info: %v", err)
	}
	if info.Version == "" || len(info.Commands) == 0 {
		t.Fatalf("guest-info = %+v", info)
	}
	if !c.NoReply("guest-shutdown") || c.NoReply("guest-ping") {
		t.Errorf("NoReply(guest-shutdown), NoReply(guest-ping) = %v, %v; want true, false",
			c.NoReply("guest-shutdown"), c.NoReply("guest-ping"))
	}
}

func TestExecErrorReply(t *testing.T) {
	a := gatest.StartAgent(t)
	ctx := testCtx(t)
	c := connect(t, ctx, a.Path)
	_, err := c.Exec(ctx, "no-such-command", nil)
	var ee *wire.ExecuteError
	if !errors.As(err, &ee) || ee.Class != "CommandNotFound" {
		t.Fatalf("err = %v; want a CommandNotFound error reply", err)
	}
	// The session goes on.
	if _, err := c.Exec(ctx, "guest-ping", nil); err != nil {
		t.Fatal(err)
	}
}

// A raw message qemu-ga's parser would refuse, or one with a key twice,
// which decoding would quietly drop, is not sent; the session goes on.
func TestRawRefused(t *testing.T) {
	a := gatest.StartAgent(t)
	ctx := testCtx(t)
	c := connect(t, ctx, a.Path)
	for _, msg := range []string{
		`{"execute":"guest-ping","execute":"guest-get-time"}`,
		`{"execute":"guest-ping","arguments":{"a":0e5}}`,
	} {
		if _, err := c.Raw(ctx, json.RawMessage(msg)); err == nil || !strings.HasPrefix(err.Error(), "raw message not sent: the agent would refuse it: ") {
			t.Errorf("Raw(%s) = %v, want it refused before sending", msg, err)
		}
	}
	if _, err := c.Exec(ctx, "guest-ping", nil); err != nil {
		t.Fatal(err)
	}
}

func TestRunProgram(t *testing.T) {
	a := gatest.StartAgent(t)
	ctx := testCtx(t)
	c := connect(t, ctx, a.Path)
	for _, tc := range []struct {
		name           string
		p              ga.Program
		code, sig      int
		stdout, stderr string
	}{
		{"exit code and streams", ga.Program{Path: "/bin/sh", Args: []string{"-c", "echo out; echo err >&2; exit 7"}}, 7, 0, "out\n", "err\n"},
		{"stdin", ga.Program{Path: "/bin/cat", Input: []byte("from stdin\n")}, 0, 0, "from stdin\n", ""},
		{"env", ga.Program{Path: "/bin/sh", Args: []string{"-c", `printf %s "$QMPSH_T"`}, Env: []string{"QMPSH_T=v 1"}}, 0, 0, "v 1", ""},
		{"signal", ga.Program{Path: "/bin/sh", Args: []string{"-c", "kill -TERM $$"}}, 128 + 15, 15, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.Run(ctx, tc.p)
			if err != nil {
				t.Fatal(err)
			}
			if res.ExitCode != tc.code || res.Signal != tc.sig || string(res.Stdout) != tc.stdout || string(res.Stderr) != tc.stderr {
				t.Errorf("got code %d signal %d stdout %q stderr %q; want %d %d %q %q",
					res.ExitCode, res.Signal, res.Stdout, res.Stderr, tc.code, tc.sig, tc.stdout, tc.stderr)
			}
		})
	}
	_, err := c.Run(ctx, ga.Program{Path: filepath.Join(a.Dir, "no-such-program")})
	var ee *wire.ExecuteError
	if !errors.As(err, &ee) {
		t.Errorf("running a missing program: err = %v; want an error reply", err)
	}
}

func TestFileRoundTrip(t *testing.T) {
	a := gatest.StartAgent(t)
	ctx := testCtx(t)
	c := connect(t, ctx, a.Path)
	data := make([]byte, ga.DefaultChunkSize*2+12345) // a partial last chunk
	rand.Read(data)
	path := filepath.Join(a.Dir, "f")
	var calls int
	n, err := c.WriteFile(ctx, path, bytes.NewReader(data), func(int64) { calls++ })
	if err != nil || n != int64(len(data)) {
		t.Fatalf("WriteFile = %d, %v", n, err)
	}
	if calls != 3 {
		t.Errorf("progress called %d times for 3 chunks", calls)
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the written file differs (%d bytes, %v)", len(got), err)
	}
	var out bytes.Buffer
	n, err = c.ReadFile(ctx, path, &out, nil)
	if err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("ReadFile = %d, %v; content equal: %v", n, err, bytes.Equal(out.Bytes(), data))
	}
	if open, err := a.OpenFiles(a.Dir); err != nil || open != 0 {
		t.Errorf("agent has %d files open in %s (%v); want 0", open, a.Dir, err)
	}
	// A missing file is an error reply and leaves nothing open.
	_, err = c.ReadFile(ctx, filepath.Join(a.Dir, "missing"), &out, nil)
	var ee *wire.ExecuteError
	if !errors.As(err, &ee) {
		t.Errorf("reading a missing file: err = %v; want an error reply", err)
	}
}

// TestReadFileOtherLayout reads a file from an agent whose replies are
// not laid out as qemu-ga's ({"id": N, "return": ...}, members in another
// order): the reader goroutine leaves their values whole, and ReadFile
// decodes them itself, chunk after chunk, in order.
func TestReadFileOtherLayout(t *testing.T) {
	data := make([]byte, 5000)
	rand.Read(data)
	const chunk = 1024
	var off int
	closed := make(chan struct{}, 1)
	f := gatest.StartFake(t, func(req gatest.Request) map[string]any {
		switch req.Execute {
		case "guest-file-open":
			return map[string]any{"return": 7}
		case "guest-file-read": // one at a time, in order: the fake answers in turn
			end := min(off+chunk, len(data))
			r := map[string]any{"count": end - off, "buf-b64": base64.StdEncoding.EncodeToString(data[off:end]), "eof": end == len(data)}
			off = end
			return map[string]any{"return": r}
		case "guest-file-close":
			closed <- struct{}{}
			return map[string]any{"return": map[string]any{}}
		}
		return map[string]any{"error": map[string]any{"class": "CommandNotFound", "desc": req.Execute}}
	})
	ctx := testCtx(t)
	c := ga.NewClient(ga.WithChunkSize(chunk))
	if err := c.Connect(ctx, f.Path); err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	var out bytes.Buffer
	n, err := c.ReadFile(ctx, "/f", &out, nil)
	if err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("ReadFile = %d, %v; content equal: %v", n, err, bytes.Equal(out.Bytes(), data))
	}
	select {
	case <-closed:
	default:
		t.Error("the file was not closed")
	}
}

// TestOpenFileCancelledClosesHandle cancels OpenFile while the agent is
// opening the file: the agent opens it all the same, and the handle it
// answers with late must be closed, not left open in the guest.
func TestOpenFileCancelledClosesHandle(t *testing.T) {
	opening, release := make(chan struct{}), make(chan struct{})
	f := gatest.StartFake(t, func(req gatest.Request) map[string]any {
		switch req.Execute {
		case "guest-file-open":
			opening <- struct{}{}
			<-release
			return map[string]any{"return": 42}
		case "guest-file-close":
			return map[string]any{"return": map[string]any{}}
		}
		return map[string]any{"error": map[string]any{"class": "CommandNotFound", "desc": req.Execute}}
	})
	c := connect(t, testCtx(t), f.Path)
	ctx, cancel := context.WithCancel(testCtx(t))
	errc := make(chan error, 1)
	go func() {
		_, err := c.OpenFile(ctx, "/f", "r")
		errc <- err
	}()
	<-opening
	cancel()
	close(release)
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("OpenFile = %v; want context.Canceled", err)
	}
	// OpenFile has returned, so the close was sent and answered if it
	// was sent at all; the fake records a request just after it answers
	// it, so wait for the record rather than look once.
	deadline := time.After(10 * time.Second)
	for {
		select {
		case req := <-f.Received:
			if req.Execute == "guest-file-close" {
				if string(req.Arguments) != `{"handle":42}` {
					t.Errorf("closed %s; want handle 42", req.Arguments)
				}
				return
			}
		case <-deadline:
			t.Fatal("the handle the agent gave late was not closed")
		}
	}
}

// A copy cut short by its context still closes the guest file.
func TestFileClosedWhenCancelled(t *testing.T) {
	a := gatest.StartAgent(t)
	ctx := testCtx(t)
	c := connect(t, ctx, a.Path)
	cctx, cancel := context.WithCancel(ctx)
	r := &cancelReader{cancel: cancel}
	_, err := c.WriteFile(cctx, filepath.Join(a.Dir, "f"), r, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v; want context.Canceled", err)
	}
	if open, err := a.OpenFiles(a.Dir); err != nil || open != 0 {
		t.Errorf("agent has %d files open (%v); want 0", open, err)
	}
}

// cancelReader returns one chunk, then cancels its context as it returns
// the next.
type cancelReader struct {
	n      int
	cancel func()
}

func (r *cancelReader) Read(p []byte) (int, error) {
	r.n++
	if r.n > 1 {
		r.cancel()
	}
	return len(p), nil
}

func TestSilentAgent(t *testing.T) {
	f := gatest.StartFake(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	c := ga.NewClient()
	err := c.Connect(ctx, f.Path)
	var na *ga.NoAnswerError
	if !errors.As(err, &na) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v; want a *NoAnswerError for a deadline", err)
	}
	if c.Runstate() != protocol.Idle {
		t.Errorf("runstate %v after a failed connect; want idle", c.Runstate())
	}
}

func answer(req gatest.Request) map[string]any {
	if req.Execute == "guest-ping" {
		return map[string]any{"return": map[string]any{}}
	}
	return map[string]any{"error": map[string]any{"class": "CommandNotFound", "desc": "no " + req.Execute}}
}

// guest-shutdown replies nothing on success: Exec must not wait.
func TestNoReplyCommand(t *testing.T) {
	f := gatest.StartFake(t, func(req gatest.Request) map[string]any {
		if req.Execute == "guest-shutdown" {
			return nil
		}
		return answer(req)
	})
	ctx := testCtx(t)
	c := connect(t, ctx, f.Path)
	ret, err := c.Exec(ctx, "guest-shutdown", map[string]string{"mode": "powerdown"})
	if err != nil || ret != nil {
		t.Fatalf("guest-shutdown = %s, %v; want nothing, nil", ret, err)
	}
	for req := range f.Received {
		if req.Execute == "guest-shutdown" {
			break
		}
	}
	if _, err := c.Exec(ctx, "guest-ping", nil); err != nil {
		t.Fatal(err)
	}
}

// After a call goes unanswered, the next call synchronises first.
func TestResyncAfterTimeout(t *testing.T) {
	pings := 0
	f := gatest.StartFake(t, func(req gatest.Request) map[string]any {
		if req.Execute == "guest-ping" {
			pings++
			if pings == 1 {
				return nil // the first ping is lost
			}
		}
		return answer(req)
	})
	ctx := testCtx(t)
	c := connect(t, ctx, f.Path)
	<-f.Received // the connect's sync
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err := c.Exec(short, "guest-ping", nil)
	cancel()
	var na *ga.NoAnswerError
	if !errors.As(err, &na) {
		t.Fatalf("unanswered ping: err = %v; want *NoAnswerError", err)
	}
	if _, err := c.Exec(ctx, "guest-ping", nil); err != nil {
		t.Fatal(err)
	}
	var seen []string
	for len(seen) < 3 {
		seen = append(seen, (<-f.Received).Execute)
	}
	if want := []string{"guest-ping", "guest-sync-delimited", "guest-ping"}; !equal(seen, want) {
		t.Errorf("agent received %q; want %q", seen, want)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// An agent restarted mid-session ends the connection; calls fail as
// disconnected and a new connect works.
func TestAgentRestarted(t *testing.T) {
	a := gatest.StartAgent(t)
	ctx := testCtx(t)
	c := connect(t, ctx, a.Path)
	if _, err := c.Exec(ctx, "guest-ping", nil); err != nil {
		t.Fatal(err)
	}
	state, changed := c.RunstateChanged()
	if err := a.Restart(); err != nil {
		t.Fatal(err)
	}
	for state == protocol.Running {
		<-changed
		state, changed = c.RunstateChanged()
	}
	_, err := c.Exec(ctx, "guest-ping", nil)
	var de *ga.DisconnectedError
	if !errors.As(err, &de) {
		t.Fatalf("after the restart: err = %v; want *DisconnectedError", err)
	}
	c.Disconnect()
	if err := c.Connect(ctx, a.Path); err != nil {
		t.Fatal(err)
	}
	ret, err := c.Exec(ctx, "guest-ping", nil)
	if err != nil || !json.Valid(ret) {
		t.Fatalf("guest-ping after reconnecting = %s, %v", ret, err)
	}
}

func TestVsockAddress(t *testing.T) {
	c := ga.NewClient()
	for _, addr := range []string{"vsock:", "vsock:3", "vsock:x:1", "vsock:3:99999999999"} {
		err := c.Connect(context.Background(), addr)
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte("vsock:CID:PORT")) {
			t.Errorf("Connect(%q) = %v; want a bad-address error", addr, err)
		}
	}
}

func TestFastReply(t *testing.T) {
	for _, tc := range []struct {
		msg, ret string
		id       uint64
		ok       bool
	}{
		{`{"return": {}, "id": 12}`, `{}`, 12, true},
		{`{"return": {"count": 3, "buf-b64": "YWJj", "eof": true}, "id": 7}`, `{"count": 3, "buf-b64": "YWJj", "eof": true}`, 7, true},
		{`{"return": {"x": 1, "id": 5}}`, "", 0, false},                   // the id is VALUE's
		{`{"return": "a, \"id\": 5}"}`, "", 0, false},                     // inside a string
		{`{"error": {"class": "X", "desc": "y"}, "id": 3}`, "", 0, false}, // not a return
		{"\xff{\"return\": 1, \"id\": 2}", "", 0, false},                  // after a sentinel: the slow path
		{`{"return": , "id": 2}`, ", ", 0, false},
	} {
		ret, id, ok := ga.FastReply([]byte(tc.msg))
		if ok != tc.ok || ok && (string(ret) != tc.ret || id != tc.id) {
			t.Errorf("fastReply(%q) = %q, %d, %v; want %q, %d, %v", tc.msg, ret, id, ok, tc.ret, tc.id, tc.ok)
		}
	}
}

func TestDecodeRead(t *testing.T) {
	for _, tc := range []struct {
		ret, data string
		eof       bool
	}{
		{`{"count": 3, "buf-b64": "YWJj", "eof": false}`, "abc", false},
		{`{"count": 3, "buf-b64": "YWJj", "eof": true}`, "abc", true},
		{`{"eof": true, "count": 0, "buf-b64": ""}`, "", true},
		{`{"count": 3, "buf-b64": "YW\/j", "eof": false}`, "ao\xe3", false}, // an escape: decoded as JSON
	} {
		data, eof, err := ga.DecodeRead([]byte(tc.ret), nil)
		if err != nil || string(data) != tc.data || eof != tc.eof {
			t.Errorf("decodeRead(%s) = %q, %v, %v; want %q, %v", tc.ret, data, eof, err, tc.data, tc.eof)
		}
	}
	for _, bad := range []string{
		`{"buf-b64": "!!!"}`,                   // not base64
		`{"buf-b64": "YWJj", "eof": tru}`,      // not JSON around the data
		`{"buf-b64": "YWJj"}, "extra": 2, "x"`, // a fragment of a reply
	} {
		if _, _, err := ga.DecodeRead([]byte(bad), nil); err == nil {
			t.Errorf("decodeRead(%s): no error", bad)
		}
	}
}

// Nothing listens on vsock here (the host's CID 2, a port nobody uses):
// the dial fails as a connection error, whether or not the machine has
// vsock at all.
func TestVsockConnectFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := ga.NewClient()
	err := c.Connect(ctx, "vsock:2:4000000007")
	var ce *protocol.ConnectError
	if !errors.As(err, &ce) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Connect = %v; want a connection error", err)
	}
	if c.Runstate() != protocol.Idle {
		t.Errorf("runstate %v", c.Runstate())
	}
}

// qemu-ga refuses a request of 64 MiB or more unparsed, with an error
// without id: the client must not send one (a ga run with big stdin
// waited out its timeout for a reply that never came).
func TestRequestTooLargeNotSent(t *testing.T) {
	f := gatest.StartFake(t, answer)
	ctx := testCtx(t)
	var mu sync.Mutex
	var sent [][]byte
	c := ga.NewClient(ga.WithTrace(func(dir protocol.Direction, msg []byte) {
		if dir == protocol.Sent && bytes.Contains(msg, []byte(`"guest-exec"`)) {
			mu.Lock()
			sent = append(sent, bytes.Clone(msg))
			mu.Unlock()
		}
	}))
	if err := c.Connect(ctx, f.Path); err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()

	// RequestSize is the request's length, its id at the longest.
	p := ga.Program{Path: "/bin/cat", Args: []string{"-"}, Env: []string{"A=1"}, Input: []byte("hello, world")}
	c.Start(ctx, p) // the fake has no guest-exec: an error reply
	mu.Lock()
	if len(sent) != 1 || p.RequestSize() < len(bytes.TrimSpace(sent[0])) || p.RequestSize() > len(bytes.TrimSpace(sent[0]))+20 {
		t.Errorf("RequestSize() = %d for the request %q", p.RequestSize(), sent)
	}
	sent = nil
	mu.Unlock()

	p.Input = nil
	base := p.RequestSize() + len(`,"input-data":""`)
	p.Input = make([]byte, (ga.MaxRequestSize-base)/4*3+3) // one base64 quantum too many
	if n := p.RequestSize(); n <= ga.MaxRequestSize {
		t.Fatalf("RequestSize() = %d; the test wants one over %d", n, ga.MaxRequestSize)
	}
	_, err := c.Start(ctx, p)
	var tl *ga.RequestTooLargeError
	if !errors.As(err, &tl) || tl.Command != "guest-exec" || tl.Size != p.RequestSize() {
		t.Fatalf("Start = %v; want a *RequestTooLargeError of %d bytes", err, p.RequestSize())
	}
	// Nor is any other request so long sent (Exec, Raw and the copies
	// check each encoded request).
	if err := ga.CheckSize("guest-ping", make([]byte, ga.MaxRequestSize)); err != nil {
		t.Errorf("checkSize of the longest request = %v", err)
	}
	if err := ga.CheckSize("guest-ping", make([]byte, ga.MaxRequestSize+1)); !errors.As(err, &tl) {
		t.Errorf("checkSize of a request too long = %v; want a *RequestTooLargeError", err)
	}
	if _, err := c.Exec(ctx, "guest-ping", nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sent) != 0 {
		t.Errorf("%d guest-exec requests were sent", len(sent))
	}
}

// An error without id while one request waits is that request's answer
// (qemu-ga's "JSON token size limit exceeded" for a request it refused
// unparsed), not dropped to leave the call waiting for a reply that never
// comes; the next request synchronises first. The 0xFF of a sync provokes
// such an error too: the sync must go on waiting for its own reply.
func TestIDLessErrorFailsTheRequestWaiting(t *testing.T) {
	f := gatest.StartFake(t, func(req gatest.Request) map[string]any {
		if req.Execute == "guest-exec" {
			return map[string]any{"error": map[string]any{"class": "GenericError", "desc": "JSON token size limit exceeded"}, "id": nil}
		}
		return answer(req)
	})
	ctx := testCtx(t)
	c := connect(t, ctx, f.Path)
	<-f.Received // the connect's sync
	_, err := c.Exec(ctx, "guest-exec", map[string]string{"path": "/bin/true"})
	var ee *wire.ExecuteError
	if !errors.As(err, &ee) || ee.Desc != "JSON token size limit exceeded" || ee.Command != "guest-exec" {
		t.Fatalf("Exec = %v; want the agent's error without id", err)
	}
	if _, err := c.Exec(ctx, "guest-ping", nil); err != nil {
		t.Fatal(err)
	}
	var seen []string
	for len(seen) < 3 {
		seen = append(seen, (<-f.Received).Execute)
	}
	if want := []string{"guest-exec", "guest-sync-delimited", "guest-ping"}; !equal(seen, want) {
		t.Errorf("agent received %q; want %q", seen, want)
	}
}

// The client's own bound on a call is said as it was set, not rounded as
// a caller's deadline is (95ms would read 100ms).
func TestCallBoundSaid(t *testing.T) {
	f := gatest.StartFake(t, func(req gatest.Request) map[string]any {
		if req.Execute == "guest-ping" {
			return nil
		}
		return answer(req)
	})
	ctx := testCtx(t)
	c := ga.NewClient(ga.WithCallTimeout(95 * time.Millisecond))
	if err := c.Connect(ctx, f.Path); err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	_, err := c.Exec(ctx, "guest-ping", nil)
	var na *ga.NoAnswerError
	if !errors.As(err, &na) || na.After != 95*time.Millisecond || !strings.Contains(err.Error(), "within 95ms to guest-ping") {
		t.Fatalf("unanswered ping: err = %v; want a *NoAnswerError saying 95ms", err)
	}
}

// A QMP monitor is no agent: Connect says so from its greeting.
func TestConnectToMonitor(t *testing.T) {
	sock := qmptest.StartQEMU(t)
	c := ga.NewClient()
	if err := c.Connect(testCtx(t), sock); !errors.Is(err, ga.ErrMonitor) {
		t.Fatalf("Connect to a QMP monitor = %v, want ErrMonitor", err)
	}
}

// An agent that stops answering in the middle of a copy (a stalled
// guest) still gets the close, written without the synchronisation it
// did not answer: once it runs again, the file is not left open.
func TestReadFileAgentStalls(t *testing.T) {
	a := gatest.StartAgent(t)
	ctx := testCtx(t)
	path := filepath.Join(a.Dir, "big")
	if err := os.WriteFile(path, make([]byte, 64*ga.DefaultChunkSize), 0o600); err != nil {
		t.Fatal(err)
	}
	// The bound must let the first chunk through on a loaded machine (it
	// is what stops the agent); only the calls after the stop run it out.
	c := ga.NewClient(ga.WithCallTimeout(2 * time.Second))
	if err := c.Connect(ctx, a.Path); err != nil {
		t.Fatal(err)
	}
	stopped := false
	resume := func() {
		if stopped {
			syscall.Kill(a.Pid(), syscall.SIGCONT)
			stopped = false
		}
	}
	defer resume()
	_, err := c.ReadFile(ctx, path, io.Discard, func(int64) {
		if !stopped {
			stopped = syscall.Kill(a.Pid(), syscall.SIGSTOP) == nil
		}
	})
	var na *ga.NoAnswerError
	if !stopped || !errors.As(err, &na) {
		t.Fatalf("ReadFile from a stopped agent = %v, want a *NoAnswerError", err)
	}
	c.Disconnect()
	resume()
	// The agent serves one client at a time and reads what the last one
	// wrote before it takes the next: once a new client is synchronised,
	// the close has run.
	connect(t, ctx, a.Path)
	if open, err := a.OpenFiles(a.Dir); err != nil || open != 0 {
		t.Errorf("agent has %d files open in %s (%v); want 0", open, a.Dir, err)
	}
}

// Replies laid out as qemu-ga writes them (the fast path) but not the
// JSON they look like: Exec returns valid JSON or a protocol error at
// once, never a fragment and never a wait for its deadline; output before
// a 0xFF is stale and dropped first.
func TestOddReplies(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		ret       string // "" for a ProtocolError
	}{
		{"extra member", `{"return": {"a": 1}, "extra": 2, "id": %ID%}` + "\n", `{"a":1}`},
		{"not JSON", `{"return": hello, "id": %ID%}` + "\n", ""},
		{"stale before a sentinel", `{"return": {"a": ` + "\xff" + `{"return": 5, "id": %ID%}` + "\n", `5`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := gatest.StartFake(t, func(req gatest.Request) map[string]any {
				if req.Execute == "guest-info" {
					return map[string]any{"raw": tc.raw}
				}
				return answer(req)
			})
			ctx := testCtx(t)
			c := connect(t, ctx, f.Path)
			ret, err := c.Exec(ctx, "guest-info", nil)
			var pe *ga.ProtocolError
			switch {
			case tc.ret == "" && !errors.As(err, &pe):
				t.Fatalf("Exec = %s, %v; want a ProtocolError", ret, err)
			case tc.ret != "" && (err != nil || string(compact(ret)) != tc.ret):
				t.Fatalf("Exec = %s, %v; want %s", ret, err, tc.ret)
			}
			if _, err := c.Exec(ctx, "guest-ping", nil); err != nil {
				t.Fatalf("the next call: %v", err)
			}
		})
	}
}

// An agent that died mid-reply and was restarted answers the client's
// resynchronisation after its 0xFF sentinel, the half reply before it on
// the same line: the sync must find its answer there.
func TestResyncAfterHalfReply(t *testing.T) {
	f := gatest.StartFake(t, func(req gatest.Request) map[string]any {
		if req.Execute == "guest-info" { // half of it, and the agent is gone
			return map[string]any{"raw": `{"return": {"version": "7.2.0", "supported_commands": [`}
		}
		return answer(req)
	})
	ctx := testCtx(t)
	c := connect(t, ctx, f.Path)
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err := c.Exec(short, "guest-info", nil)
	cancel()
	var na *ga.NoAnswerError
	if !errors.As(err, &na) {
		t.Fatalf("guest-info answered by half: %v; want *NoAnswerError", err)
	}
	if _, err := c.Exec(ctx, "guest-ping", nil); err != nil {
		t.Fatalf("the call after the resync: %v", err)
	}
}

func compact(b []byte) []byte {
	var out bytes.Buffer
	if json.Compact(&out, b) != nil {
		return b
	}
	return out.Bytes()
}

// A source that cannot be read at all fails the copy before the guest
// file is opened, so the file keeps what it had (opening it for writing
// would empty it).
func TestWriteFileUnreadableSource(t *testing.T) {
	a := gatest.StartAgent(t)
	ctx := testCtx(t)
	c := connect(t, ctx, a.Path)
	path := filepath.Join(a.Dir, "precious")
	if err := os.WriteFile(path, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir, err := os.Open(a.Dir) // reading a directory fails
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	if n, err := c.WriteFile(ctx, path, dir, nil); err == nil || n != 0 {
		t.Fatalf("WriteFile from a directory = %d, %v; want its read error", n, err)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != "precious\n" {
		t.Fatalf("the guest file after the failed copy: %q, %v; want it as it was", got, err)
	}
}
