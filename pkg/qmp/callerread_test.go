package qmp_test

// Calls that read their own reply (protocol.Read: a lone call, once the
// reader goroutine has yielded the connection after an earlier call).
// Each test makes calls in a row, so that most take that path, and checks
// that it keeps the guarantees of the reader goroutine's path.

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/qmpsh/qmpsh/pkg/protocol"
	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// echoUntil answers every request with its command name until handle
// (if not nil) takes one over, returning false to stop serving.
func echoUntil(handle func(c *qmptest.Conn, req *qmptest.Request) bool) func(*qmptest.Conn) {
	return func(c *qmptest.Conn) {
		if !negotiated(c) {
			return
		}
		for {
			req, err := c.ReadRequest()
			if err != nil {
				return
			}
			if handle != nil && req.Execute != "echo" {
				if !handle(c, req) {
					return
				}
				continue
			}
			c.Reply(req.ID, req.Execute)
		}
	}
}

// idMember is the id member of a reply to a request with that id, as
// QEMU lays it out, or nothing for a request without one.
func idMember(id json.RawMessage) string {
	if id == nil {
		return ""
	}
	return `, "id": ` + string(id)
}

func echo(t *testing.T, c *qmp.Client, ctx context.Context, n int) {
	t.Helper()
	for range n {
		if ret, err := c.Execute(ctx, "echo", nil); err != nil || string(ret) != `"echo"` {
			t.Fatalf("Execute(echo) = %s, %v", ret, err)
		}
	}
}

// TestCallerReadInterrupted cancels calls whose reply has half arrived:
// the rest of it, which comes with the next reply, must be read as the
// end of that reply (and dropped quietly), not as a line of its own.
func TestCallerReadInterrupted(t *testing.T) {
	var half json.RawMessage // the id of the reply half written
	s := fakeServer(t, echoUntil(func(c *qmptest.Conn, req *qmptest.Request) bool {
		if req.Execute == "half" {
			c.WriteRaw([]byte(`{"return": {"a": `))
			half = req.ID
			return true
		}
		// The next call after the half reply: end it first.
		c.WriteRaw([]byte(`1}` + idMember(half) + "}\r\n"))
		c.Reply(req.ID, req.Execute)
		return true
	}))
	var logs qmptest.Buffer
	c := connect(t, s.Addr, qmp.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	for i := range 20 {
		echo(t, c, testContext(t), 3)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		if i%2 == 1 { // a cancellation rather than a deadline
			ctx, cancel = context.WithCancel(context.Background())
			time.AfterFunc(20*time.Millisecond, cancel)
		}
		_, err := c.Execute(ctx, "half", nil)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			t.Fatalf("round %d: Execute(half) = %v, want ctx's error", i, err)
		}
		if ret, err := c.Execute(testContext(t), "after", nil); err != nil || string(ret) != `"after"` {
			t.Fatalf("round %d: Execute(after) = %s, %v", i, ret, err)
		}
	}
	if strings.Contains(logs.String(), "unknown id") {
		t.Errorf("a late reply was logged as unknown:\n%s", logs.String())
	}
}

// TestCallerReadGarbage: garbage followed at once by replies to two
// waiting calls fails both calls; neither gets its reply.
func TestCallerReadGarbage(t *testing.T) {
	for round := range 50 {
		s := fakeServer(t, echoUntil(func(c *qmptest.Conn, req *qmptest.Request) bool {
			first := req
			second, err := c.ReadRequest()
			if err != nil {
				return false
			}
			c.WriteRaw([]byte("this is not json\r\n" +
				`{"return": {}` + idMember(first.ID) + "}\r\n" +
				`{"return": {}` + idMember(second.ID) + "}\r\n"))
			<-c.Done()
			return false
		}))
		c := connect(t, s.Addr)
		ctx := testContext(t)
		echo(t, c, ctx, 3)
		errs := make(chan error, 2)
		go func() { _, err := c.Execute(ctx, "one", nil); errs <- err }()
		go func() { _, err := c.Execute(ctx, "two", nil); errs <- err }()
		for range 2 {
			lostConnection(t, <-errs, "connection lost before the reply arrived: QMP protocol error: server sent something that is not a JSON object: this is not json")
		}
		var pe *qmp.ProtocolError
		if err := c.Disconnect(); !errors.As(err, &pe) {
			t.Fatalf("round %d: Disconnect() = %v, want the protocol error", round, err)
		}
	}
}

// TestCallerReadConnectionLost drops the connection while a call waits,
// after calls in a row: the call fails at once with the cause, which
// Disconnect reports too.
func TestCallerReadConnectionLost(t *testing.T) {
	s := fakeServer(t, echoUntil(func(c *qmptest.Conn, req *qmptest.Request) bool {
		c.Close()
		return false
	}))
	c := connect(t, s.Addr)
	echo(t, c, testContext(t), 10)
	_, err := c.Execute(testContext(t), "die", nil)
	lostConnection(t, err, "connection lost before the reply arrived: connection closed by peer")
	if err := c.Disconnect(); !errors.Is(err, protocol.ErrClosedByPeer) {
		t.Errorf("Disconnect() = %v, want connection closed by peer", err)
	}
}

// TestCallerReadIdle: with no call waiting after calls in a row, an event
// still reaches a Listener made then, and the server hanging up still
// ends the session by itself.
func TestCallerReadIdle(t *testing.T) {
	listening := make(chan struct{})
	s := fakeServer(t, echoUntil(func(c *qmptest.Conn, req *qmptest.Request) bool {
		c.Reply(req.ID, nil)
		<-listening
		c.Event("BYE", nil)
		c.Close()
		return false
	}))
	c := connect(t, s.Addr)
	ctx := testContext(t)
	w := c.Watch()
	defer w.Close()
	echo(t, c, ctx, 10)
	if _, err := c.Execute(ctx, "bye", nil); err != nil {
		t.Fatal(err)
	}
	l := c.Listen("BYE")
	defer l.Close()
	close(listening)
	select {
	case ev := <-l.Events():
		if ev.Name != "BYE" {
			t.Fatalf("event %s", ev.Name)
		}
	case <-ctx.Done():
		t.Fatal("no event")
	}
	for {
		st, err := w.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st == protocol.Disconnecting {
			break
		}
	}
	if err := c.Disconnect(); !errors.Is(err, protocol.ErrClosedByPeer) {
		t.Errorf("Disconnect() = %v, want connection closed by peer", err)
	}
}

// noDeadlines is a net.Conn that refuses read deadlines, as a caller's
// own net.Conn (ConnectConn) may.
type noDeadlines struct{ net.Conn }

func (noDeadlines) SetReadDeadline(time.Time) error { return errors.New("not supported") }

// TestCallerReadNoDeadlines: on a connection without read deadlines,
// where a call reading could not be interrupted, calls in a row still
// work and a context still ends a call waiting for a reply that never
// comes.
func TestCallerReadNoDeadlines(t *testing.T) {
	s := fakeServer(t, echoUntil(func(c *qmptest.Conn, req *qmptest.Request) bool {
		return true // never answered
	}))
	conn, err := net.Dial("unix", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	c := qmp.NewClient()
	if err := c.ConnectConn(testContext(t), noDeadlines{conn}); err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	echo(t, c, testContext(t), 10)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	if _, err := c.Execute(ctx, "hang", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Execute(hang) = %v, want %v", err, context.Canceled)
	}
	echo(t, c, testContext(t), 1)
}

// TestCallerReadBlankLines: blank lines after a reply do not keep the
// call that read it waiting for more.
func TestCallerReadBlankLines(t *testing.T) {
	s := fakeServer(t, echoUntil(func(c *qmptest.Conn, req *qmptest.Request) bool {
		return c.WriteRaw([]byte(`{"return": "blank"`+idMember(req.ID)+"}\r\n\r\n\n")) == nil
	}))
	c := connect(t, s.Addr)
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ret, err := c.Execute(ctx, "blank", nil)
		cancel()
		if err != nil || string(ret) != `"blank"` {
			t.Fatalf("call %d: Execute(blank) = %s, %v", i, ret, err)
		}
	}
}

// TestCallerReadSendFails: a lone call that fails to send (here, files
// over a connection that cannot pass them) leaves the calls that came
// after it to the reader goroutine, which reads their replies.
func TestCallerReadSendFails(t *testing.T) {
	s := fakeServer(t, echoUntil(nil))
	conn, err := net.Dial("unix", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	c := qmp.NewClient()
	if err := c.ConnectConn(testContext(t), struct{ net.Conn }{conn}); err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	ctx := testContext(t)
	for range 200 {
		done := make(chan error, 1)
		go func() {
			_, err := c.ExecuteWithFiles(ctx, "getfd", map[string]string{"fdname": "x"}, os.Stdin)
			done <- err
		}()
		echo(t, c, ctx, 1)
		if err := <-done; err == nil || !strings.Contains(err.Error(), "needs a UNIX socket") {
			t.Fatalf("ExecuteWithFiles = %v, want a UNIX socket error", err)
		}
	}
}
