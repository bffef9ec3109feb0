package qmp_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// TestEventMarshalJSON: an event encodes as QEMU's line, compacted.
func TestEventMarshalJSON(t *testing.T) {
	ts := time.Unix(1764097048, 123456000)
	for _, tc := range []struct {
		ev   qmp.Event
		want string
	}{
		{qmp.Event{Name: "STOP", Timestamp: ts},
			`{"timestamp":{"seconds":1764097048,"microseconds":123456},"event":"STOP"}`},
		{qmp.Event{Name: "BLOCK_JOB_READY", Timestamp: ts, Data: json.RawMessage(`{"device": "d0", "len": 10}`)},
			`{"timestamp":{"seconds":1764097048,"microseconds":123456},"event":"BLOCK_JOB_READY","data":{"device":"d0","len":10}}`},
		{qmp.Event{Name: `odd"name`, Data: json.RawMessage(`[]`)},
			`{"event":"odd\"name","data":[]}`},
	} {
		got, err := tc.ev.MarshalJSON()
		if err != nil || string(got) != tc.want {
			t.Errorf("MarshalJSON(%s) = %s, %v\nwant %s", tc.ev.Name, got, err, tc.want)
		}
	}
	if _, err := (qmp.Event{Name: "X", Data: json.RawMessage(`{`)}).MarshalJSON(); err == nil {
		t.Error("MarshalJSON with bad data: no error")
	}
}

// floodServer is a fake QEMU that answers the first command after
// negotiation with n events named E, the i-th with data(i), and then its
// reply.
func floodServer(t *testing.T, n int, data func(i int) map[string]any) *qmptest.Server {
	return fakeServer(t, func(c *qmptest.Conn) {
		if !negotiated(c) {
			return
		}
		req, err := c.ReadRequest()
		if err != nil {
			return
		}
		for i := range n {
			c.Event("E", data(i))
		}
		c.Reply(req.ID, nil)
		<-c.Done()
	})
}

// TestEventsKeepTheirData: each event's data is its own, not a view of a
// read buffer that later messages overwrite. A flood of distinct events
// is read whole before the listener looks at any.
func TestEventsKeepTheirData(t *testing.T) {
	const n = 5000
	s := floodServer(t, n, func(i int) map[string]any {
		return map[string]any{"i": i, "pad": bytes.Repeat([]byte("x"), i%300)}
	})
	c := connect(t, s.Addr)
	l := c.Listen("E")
	defer l.Close()
	if _, err := c.Execute(testContext(t), "flood", nil); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		ev := <-l.Events()
		var d struct {
			I   int
			Pad []byte
		}
		if err := json.Unmarshal(ev.Data, &d); err != nil || d.I != i || len(d.Pad) != i%300 {
			t.Fatalf("event %d: data %.80s (%v)", i, ev.Data, err)
		}
		want := fmt.Sprintf(`"event":"E","data":{"i":%d,`, i)
		if line, err := ev.MarshalJSON(); err != nil || !bytes.Contains(line, []byte(want)) {
			t.Fatalf("event %d: MarshalJSON = %.120s, %v", i, line, err)
		}
	}
}

// TestListenerTake: after a call returns, every event that came before
// its reply has arrived, and Take hands each over, in order, then says
// there are none, without waiting for more. The flood overfills the
// Listener's channel, so its delivery goroutine is mid-hand-over as
// Take runs.
func TestListenerTake(t *testing.T) {
	const n = 5000
	s := floodServer(t, n, func(i int) map[string]any { return map[string]any{"i": i} })
	c := connect(t, s.Addr)
	l := c.Listen("E")
	defer l.Close()
	if _, err := c.Execute(testContext(t), "flood", nil); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		ev, ok := l.Take()
		if !ok {
			t.Fatalf("Take() found nothing after %d of %d events", i, n)
		}
		var d struct{ I int }
		if err := json.Unmarshal(ev.Data, &d); err != nil || d.I != i {
			t.Fatalf("event %d: data %s (%v)", i, ev.Data, err)
		}
	}
	if ev, ok := l.Take(); ok {
		t.Errorf("Take() after the last event = %s, true", ev.Name)
	}
	if n := l.Len(); n != 0 {
		t.Errorf("Len() after taking every event = %d", n)
	}
}

// TestListenDuringFlood makes Listeners while events pour in: an event
// read as a Listener appears must still reach it with its own data, not
// a view of the read buffer (which the next read overwrites).
func TestListenDuringFlood(t *testing.T) {
	s := fakeServer(t, func(c *qmptest.Conn) {
		if !negotiated(c) {
			return
		}
		var b []byte
		for n := 0; ; n++ {
			b = fmt.Appendf(b, `{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "E", "data": {"n": %d, "s": "%s"}}`+"\r\n",
				n, bytes.Repeat([]byte{byte('a' + n%26)}, 1+n%50))
			if len(b) > 32<<10 {
				if c.WriteRaw(b) != nil {
					return
				}
				b = b[:0]
			}
		}
	})
	c := connect(t, s.Addr)
	for range 300 {
		l := c.Listen()
		for range 100 {
			ev := <-l.Events()
			var d struct {
				N int
				S string
			}
			if err := json.Unmarshal(ev.Data, &d); err != nil || len(d.S) != 1+d.N%50 || strings.Trim(d.S, string(rune('a'+d.N%26))) != "" {
				t.Fatalf("event data %.100s (%v)", ev.Data, err)
			}
		}
		l.Close()
	}
}

// TestEventBeforeReplyReceivable: an event the server sends before a
// reply (as QEMU sends STOP before stop's return) can be received without
// waiting as soon as the call returns.
func TestEventBeforeReplyReceivable(t *testing.T) {
	s := fakeServer(t, echoUntil(func(c *qmptest.Conn, req *qmptest.Request) bool {
		c.Event("STOP", nil)
		return c.Reply(req.ID, nil) == nil
	}))
	c := connect(t, s.Addr)
	l := c.Listen("STOP")
	defer l.Close()
	for i := range 200 {
		if _, err := c.Execute(testContext(t), "stop", nil); err != nil {
			t.Fatal(err)
		}
		select {
		case ev := <-l.Events():
			if ev.Name != "STOP" {
				t.Fatalf("call %d: event %s", i, ev.Name)
			}
		default:
			t.Fatalf("call %d: STOP not in the channel when stop returned (Len %d)", i, l.Len())
		}
	}
}
