package qmp_test

// Faults real QEMU will not produce on demand, played by the fake server
// in qmptest. One test per fault, each asserting the exact error; goleak
// (TestMain) checks that nothing is left running.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qmpsh/qmpsh/pkg/protocol"
	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeServer starts a fake QMP server running handler, closed at the end.
func fakeServer(t *testing.T, handler func(*qmptest.Conn)) *qmptest.Server {
	t.Helper()
	s := qmptest.NewServer(handler)
	t.Cleanup(s.Close)
	return s
}

// negotiated greets, negotiates, and returns the connection for the test
// to drive request by request.
func negotiated(c *qmptest.Conn) bool {
	if c.Greet() != nil {
		return false
	}
	req, err := c.ReadRequest()
	if err != nil || req.Execute != "qmp_capabilities" {
		return false
	}
	return c.Reply(req.ID, nil) == nil
}

// lostConnection asserts err is a *DisconnectedError whose message is want.
func lostConnection(t *testing.T, err error, want string) {
	t.Helper()
	var de *qmp.DisconnectedError
	if !errors.As(err, &de) {
		t.Fatalf("error = %v (%T), want *qmp.DisconnectedError", err, err)
	}
	if err.Error() != want {
		t.Fatalf("error = %q\nwant    %q", err, want)
	}
}

func TestFaultNoGreeting(t *testing.T) {
	s := fakeServer(t, func(c *qmptest.Conn) { <-c.Done() })
	c := qmp.NewClient()
	// A bound of a second or more is given back to 100 ms: a test machine
	// under load may start Connect some milliseconds after the bound was
	// set, which a finer one (100 ms, shown to the millisecond) would show.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := c.Connect(ctx, s.Addr)
	var ge *qmp.GreetingError
	if !errors.As(err, &ge) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Connect() = %v, want a greeting error wrapping the deadline", err)
	}
	var te *qmp.TimeoutError
	if !errors.As(err, &te) || te.After != time.Second {
		t.Errorf("Connect() = %#v, want a *qmp.TimeoutError after 1s", err)
	}
	if want := "timed out after 1s waiting for the QMP greeting"; err.Error() != want {
		t.Errorf("message = %q, want %q", err, want)
	}
	if s := c.Runstate(); s != protocol.Idle {
		t.Errorf("runstate = %v, want IDLE", s)
	}
}

func TestFaultBadGreeting(t *testing.T) {
	for _, tc := range []struct{ name, greeting, want string }{
		{"NotJSON", "hello there\r\n", "QMP greeting: not a QMP greeting: hello there"},
		{"NoQMPMember", `{"return": {}}` + "\r\n", `QMP greeting: expected a greeting object with a "QMP" member, got {"return": {}}`},
		{"NoVersion", `{"QMP": {"capabilities": []}}` + "\r\n", `QMP greeting: greeting lacks version.qemu.{major,minor,micro}: {"QMP": {"capabilities": []}}`},
		{"NoCapabilities", `{"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}}}}` + "\r\n",
			`QMP greeting: greeting lacks a capabilities list: {"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}}}}`},
		{"Hangup", "", "QMP greeting: server closed the connection without greeting"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := fakeServer(t, func(c *qmptest.Conn) {
				if tc.greeting != "" {
					c.WriteRaw([]byte(tc.greeting))
					<-c.Done()
				}
			})
			err := qmp.NewClient().Connect(testContext(t), s.Addr)
			var ge *qmp.GreetingError
			if !errors.As(err, &ge) || err.Error() != tc.want {
				t.Fatalf("Connect() = %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestFaultNegotiationRefused(t *testing.T) {
	s := fakeServer(t, func(c *qmptest.Conn) {
		c.Greet()
		req, err := c.ReadRequest()
		if err == nil {
			c.ReplyError(req.ID, "GenericError", "capabilities negotiation is already complete")
		}
		<-c.Done()
	})
	err := qmp.NewClient().Connect(testContext(t), s.Addr)
	var ne *qmp.NegotiationError
	var ee *qmp.ExecuteError
	if !errors.As(err, &ne) || !errors.As(err, &ee) || ee.Class != "GenericError" {
		t.Fatalf("Connect() = %v, want a negotiation error", err)
	}
	if want := "QMP capabilities negotiation: GenericError: capabilities negotiation is already complete"; err.Error() != want {
		t.Errorf("message = %q", err)
	}
}

// A JSON object with one of QMP's members of the wrong type is named as
// such, not as "not a JSON object".
func TestFaultMemberOfWrongType(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{`{"event": 5}`, `server sent a message whose "event" is not a string (number): {"event": 5}`},
		{`{"timestamp": {"seconds": "x"}, "event": "STOP"}`, `server sent a message whose "timestamp.seconds" is not an integer (string): {"timestamp": {"seconds": "x"}, "event": "STOP"}`},
		{`{"error": [], "id": 1}`, `server sent a message whose "error" is not an object (array): {"error": [], "id": 1}`},
	} {
		s := fakeServer(t, func(c *qmptest.Conn) {
			if negotiated(c) {
				c.ReadRequest()
				c.WriteRaw([]byte(tc.line + "\r\n"))
				<-c.Done()
			}
		})
		c := qmp.NewClient()
		if err := c.Connect(testContext(t), s.Addr); err != nil {
			t.Fatal(err)
		}
		_, err := c.Execute(testContext(t), "query-status", nil)
		lostConnection(t, err, "connection lost before the reply arrived: QMP protocol error: "+tc.want)
		c.Disconnect()
	}
}

// QEMU 7.2 can write an event before the greeting on a new connection
// (one emitted as the previous client left): the client connects, and
// the event reaches a listener.
func TestEventBeforeGreeting(t *testing.T) {
	s := fakeServer(t, func(c *qmptest.Conn) {
		c.Event("BLOCK_JOB_READY", map[string]any{"device": "j0"})
		if negotiated(c) {
			<-c.Done()
		}
	})
	c := qmp.NewClient()
	l := c.Listen("BLOCK_JOB_READY")
	defer l.Close()
	if err := c.Connect(testContext(t), s.Addr); err != nil {
		t.Fatalf("Connect() = %v", err)
	}
	defer c.Disconnect()
	select {
	case ev := <-l.Events():
		if string(ev.Data) != `{"device":"j0"}` {
			t.Errorf("event data %s", ev.Data)
		}
	case <-testContext(t).Done():
		t.Fatal("the event before the greeting never reached the listener")
	}
}

func TestFaultGarbageLine(t *testing.T) {
	s := fakeServer(t, func(c *qmptest.Conn) {
		if negotiated(c) {
			c.ReadRequest()
			c.WriteRaw([]byte("this is not json\r\n"))
			<-c.Done()
		}
	})
	c := qmp.NewClient()
	if err := c.Connect(testContext(t), s.Addr); err != nil {
		t.Fatal(err)
	}
	_, err := c.Execute(testContext(t), "query-status", nil)
	lostConnection(t, err, "connection lost before the reply arrived: QMP protocol error: server sent something that is not a JSON object: this is not json")
	var pe *qmp.ProtocolError
	if err := c.Disconnect(); !errors.As(err, &pe) {
		t.Errorf("Disconnect() = %v, want the protocol error", err)
	}
}

func TestFaultIDlessError(t *testing.T) {
	s := fakeServer(t, func(c *qmptest.Conn) {
		if negotiated(c) {
			c.ReadRequest()
			c.ReplyError(nil, "GenericError", "JSON parse error, invalid keyword 'x'")
			<-c.Done()
		}
	})
	c := qmp.NewClient()
	if err := c.Connect(testContext(t), s.Addr); err != nil {
		t.Fatal(err)
	}
	// A raw message has an id, so an id-less error cannot be its reply.
	_, err := c.Raw(testContext(t), json.RawMessage(`{"execute":"query-status"}`))
	lostConnection(t, err, "connection lost before the reply arrived: QMP protocol error: server could not parse a request: GenericError: JSON parse error, invalid keyword 'x'")
	c.Disconnect()
}

func TestFaultClosedMidCall(t *testing.T) {
	s := fakeServer(t, func(c *qmptest.Conn) {
		if negotiated(c) {
			c.ReadRequest()
			c.Close()
		}
	})
	c := qmp.NewClient()
	if err := c.Connect(testContext(t), s.Addr); err != nil {
		t.Fatal(err)
	}
	// The deadline is long: the call must fail when the connection
	// drops, not when the deadline passes.
	start := time.Now()
	_, err := c.Execute(testContext(t), "query-status", nil)
	lostConnection(t, err, "connection lost before the reply arrived: connection closed by peer")
	if time.Since(start) > 20*time.Second {
		t.Error("the call waited for its deadline")
	}
	if err := c.Disconnect(); !errors.Is(err, protocol.ErrClosedByPeer) {
		t.Errorf("Disconnect() = %v, want connection closed by peer", err)
	}
}

func TestFaultHalfWrittenReply(t *testing.T) {
	s := fakeServer(t, func(c *qmptest.Conn) {
		if negotiated(c) {
			req, _ := c.ReadRequest()
			c.WriteRaw([]byte(`{"return": {}` + idMember(req.ID)))
			c.Close()
		}
	})
	c := qmp.NewClient()
	if err := c.Connect(testContext(t), s.Addr); err != nil {
		t.Fatal(err)
	}
	_, err := c.Execute(testContext(t), "query-status", nil)
	var de *qmp.DisconnectedError
	if !errors.As(err, &de) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("error = %v, want a lost connection with an unexpected EOF", err)
	}
	c.Disconnect()
}

func TestFaultReplyNeverComes(t *testing.T) {
	s := fakeServer(t, func(c *qmptest.Conn) {
		if !negotiated(c) {
			return
		}
		first, err := c.ReadRequest() // never answered until the second
		if err != nil {
			return
		}
		second, err := c.ReadRequest()
		if err != nil {
			return
		}
		c.Reply(first.ID, "late")
		c.Reply(second.ID, "second")
		<-c.Done()
	})
	var logs qmptest.Buffer
	c := qmp.NewClient(qmp.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err := c.Connect(testContext(t), s.Addr); err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Execute(ctx, "echo", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Execute() = %v, want the deadline", err)
	}
	// The connection is still good, and the late reply to the abandoned
	// call goes nowhere: not to the next caller, and not into a warning.
	ret, err := c.Execute(testContext(t), "echo", nil)
	if err != nil || string(ret) != `"second"` {
		t.Fatalf("next Execute() = %s, %v; want \"second\"", ret, err)
	}
	if strings.Contains(logs.String(), "unknown id") {
		t.Errorf("the late reply of a cancelled call was logged as unknown:\n%s", logs.String())
	}
}

func TestFaultForeignIDs(t *testing.T) {
	s := fakeServer(t, func(c *qmptest.Conn) {
		if negotiated(c) {
			req, err := c.ReadRequest()
			if err != nil {
				return
			}
			c.Reply(json.RawMessage(`"somebody-else"`), "not yours")
			c.Reply(json.RawMessage(`{"weird": ["id"]}`), "not yours either")
			c.Reply(req.ID, "yours")
			<-c.Done()
		}
	})
	var logs qmptest.Buffer
	c := qmp.NewClient(qmp.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err := c.Connect(testContext(t), s.Addr); err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	ret, err := c.Execute(testContext(t), "echo", nil)
	if err != nil || string(ret) != `"yours"` {
		t.Fatalf("Execute() = %s, %v", ret, err)
	}
	got := logs.String()
	for _, id := range []string{`id="\"somebody-else\""`, `id="{\"weird\": [\"id\"]}"`} {
		if !strings.Contains(got, "dropping a reply with an unknown id") || !strings.Contains(got, id) {
			t.Errorf("no warning for foreign id %s in:\n%s", id, got)
		}
	}
}

func TestFaultRepliesOutOfOrder(t *testing.T) {
	s := fakeServer(t, qmptest.Standard)
	c := connect(t, s.Addr)
	ctx := testContext(t)
	// sleep's reply is overtaken by echo's; each caller gets its own.
	slow := make(chan error, 1)
	go func() {
		ret, err := c.Execute(ctx, "sleep", map[string]any{"ms": 100})
		if err == nil && string(ret) != "{}" {
			err = fmt.Errorf("sleep returned %s", ret)
		}
		slow <- err
	}()
	for i := range 10 {
		ret, err := c.Execute(ctx, "echo", map[string]any{"n": i})
		if err != nil || string(ret) != fmt.Sprintf(`{"n":%d}`, i) {
			t.Fatalf("echo %d = %s, %v", i, ret, err)
		}
	}
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
}

func TestFaultOversizedReply(t *testing.T) {
	s := fakeServer(t, qmptest.Standard)
	c := connect(t, s.Addr, qmp.WithMaxMessageSize(4096))
	_, err := c.Execute(testContext(t), "echo", map[string]any{"blob": strings.Repeat("x", 8192)})
	var tl *protocol.MessageTooLongError
	if !errors.As(err, &tl) {
		t.Fatalf("error = %v, want a message over the limit", err)
	}
	lostConnection(t, err, "connection lost before the reply arrived: message from peer exceeds the 4096-byte limit")
}

func TestFaultEventFlood(t *testing.T) {
	const n = 100_000
	s := fakeServer(t, qmptest.Standard)

	t.Run("KeepingUpLosesNothing", func(t *testing.T) {
		c := connect(t, s.Addr)
		l := c.Listen("FLOOD")
		defer l.Close()
		other := c.Listen("OTHER") // must see nothing of the flood
		defer other.Close()
		got := make(chan error, 1)
		go func() {
			for i := range n {
				ev := <-l.Events()
				var d struct{ I int }
				if json.Unmarshal(ev.Data, &d); ev.Name != "FLOOD" {
					got <- fmt.Errorf("event %d is %s", i, ev.Name)
					return
				}
			}
			got <- nil
		}()
		if _, err := c.Execute(testContext(t), "emit", map[string]any{"name": "FLOOD", "count": n}); err != nil {
			t.Fatal(err)
		}
		if err := <-got; err != nil {
			t.Fatal(err)
		}
		if l.Dropped() != 0 {
			t.Errorf("dropped %d events", l.Dropped())
		}
		select {
		case ev := <-other.Events():
			t.Errorf("listener for OTHER got %s", ev.Name)
		default:
		}
	})

	t.Run("StalledListenerIsBounded", func(t *testing.T) {
		var logs qmptest.Buffer
		c := connect(t, s.Addr, qmp.WithEventBacklog(1000),
			qmp.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		stalled := c.Listen() // never read until the end
		defer stalled.Close()
		// Replies keep flowing while the listener sleeps.
		for range 3 {
			if _, err := c.Execute(testContext(t), "emit", map[string]any{"name": "FLOOD", "count": 2000}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.Execute(testContext(t), "echo", nil); err != nil {
			t.Fatal(err)
		}
		if d := stalled.Dropped(); d != 5000 {
			t.Errorf("Dropped() = %d, want 5000 (6000 sent, backlog 1000)", d)
		}
		if !strings.Contains(logs.String(), "dropping events") {
			t.Error("drops were not logged")
		}
		// What was kept is the first 1000, in order.
		for i := range 1000 {
			ev := <-stalled.Events()
			if ev.Name != "FLOOD" {
				t.Fatalf("event %d = %s", i, ev.Name)
			}
		}
	})
}

func TestConcurrentExecute(t *testing.T) {
	const goroutines, each = 16, 200
	s := fakeServer(t, qmptest.Standard)
	c := connect(t, s.Addr)
	ctx := testContext(t)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				want := fmt.Sprintf(`{"g":%d,"i":%d}`, g, i)
				ret, err := c.Execute(ctx, "echo", json.RawMessage(want))
				if err != nil {
					t.Error(err)
					return
				}
				if string(ret) != want {
					t.Errorf("goroutine %d call %d got %s, want %s", g, i, ret, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestDisconnectFailsPendingAtOnce(t *testing.T) {
	received := make(chan struct{})
	s := fakeServer(t, func(c *qmptest.Conn) {
		if negotiated(c) {
			c.ReadRequest() // never answered
			close(received)
			<-c.Done()
		}
	})
	c := qmp.NewClient()
	if err := c.Connect(testContext(t), s.Addr); err != nil {
		t.Fatal(err)
	}
	result := make(chan error, 1)
	go func() {
		_, err := c.Execute(testContext(t), "echo", nil)
		result <- err
	}()
	<-received // the call is now waiting for its reply
	if err := c.Disconnect(); err != nil {
		t.Fatal(err)
	}
	lostConnection(t, <-result, "disconnected before the reply arrived")
}

func TestOOB(t *testing.T) {
	t.Run("Offered", func(t *testing.T) {
		s := fakeServer(t, qmptest.Standard)
		c := connect(t, s.Addr)
		ret, err := c.ExecuteOOB(testContext(t), "echo", map[string]int{"x": 1})
		if err != nil || string(ret) != `{"x":1}` {
			t.Fatalf("ExecuteOOB() = %s, %v", ret, err)
		}
	})
	t.Run("NotOffered", func(t *testing.T) {
		s := fakeServer(t, func(c *qmptest.Conn) {
			c.GreetWith()
			qmptest.Serve(c, false)
		})
		c := connect(t, s.Addr)
		if _, err := c.ExecuteOOB(testContext(t), "echo", nil); !errors.Is(err, qmp.ErrOOBNotNegotiated) {
			t.Fatalf("ExecuteOOB() = %v", err)
		}
		if _, err := c.Execute(testContext(t), "echo", nil); err != nil {
			t.Fatal(err)
		}
	})
}

func TestExecuteFilesNeedUNIX(t *testing.T) {
	c := qmp.NewClient()
	_, err := c.ExecuteWithFiles(testContext(t), "getfd", nil)
	var se *protocol.StateError
	if !errors.As(err, &se) || se.Error() != "QMPClient is not connected." {
		t.Fatalf("ExecuteWithFiles() while idle = %v", err)
	}
}

func TestArgumentsMustBeAnObject(t *testing.T) {
	s := fakeServer(t, qmptest.Standard)
	c := connect(t, s.Addr)
	_, err := c.Execute(testContext(t), "echo", []int{1})
	if err == nil || err.Error() != "arguments of echo must encode to a JSON object, not [1]" {
		t.Fatalf("Execute() = %v", err)
	}
}
