package qmp_test

import (
	"bytes"
	"encoding/json"
	"fmt"
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

// TestEventsKeepTheirData: each event's data is its own, not a view of a
// read buffer that later messages overwrite. A flood of distinct events
// is read whole before the listener looks at any.
func TestEventsKeepTheirData(t *testing.T) {
	const n = 5000
	s := fakeServer(t, func(c *qmptest.Conn) {
		if !negotiated(c) {
			return
		}
		req, err := c.ReadRequest()
		if err != nil {
			return
		}
		for i := range n {
			c.Event("E", map[string]any{"i": i, "pad": bytes.Repeat([]byte("x"), i%300)})
		}
		c.Reply(req.ID, nil)
		<-c.Done()
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
