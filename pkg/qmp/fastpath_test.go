package qmp

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// decodeCases are messages for the differential test of decodeFast.
// fast says whether decodeFast must take them itself.
var decodeCases = []struct {
	msg  string
	fast bool
}{
	{`{"return": {}, "id": "qmpsh-1"}`, true},
	{`{"return": {"status": "running", "singlestep": false, "running": true}, "id": "qmpsh-12"}`, true},
	{`{"id":"qmpsh-3","return":[1,-2.5e+3,true,false,null,"a\"b\u00e9\\",{"x":[]}]}`, true},
	{`{"return": null, "id": null}`, true},
	{`{"return": "x\u00"}`, false},
	{` { "return" : 1 , "id" : 2 } `, true},
	{"{\t\"return\":\r\n0}", true},
	{`{"timestamp": {"seconds": 1700000000, "microseconds": 123456}, "event": "STOP"}`, true},
	{`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "BLOCK_JOB_COMPLETED", "data": {"device": "drive0", "len": 1073741824}}`, true},
	{`{"event": "X", "timestamp": null, "data": null}`, true},
	{`{"event": "X", "timestamp": {}}`, true},
	{`{"event": null, "return": {}}`, true},
	{`{"event": "X", "timestamp": {"seconds": -0, "microseconds": -5}}`, true},
	{`{"event": "X", "timestamp": {"seconds": 1.5}}`, false},
	{`{"event": "X", "timestamp": {"seconds": 1e3}}`, false},
	{`{"event": "X", "timestamp": {"seconds": 01}}`, false},
	{`{"event": "X", "timestamp": {"seconds": 12345678901234567890}}`, false},
	{`{"event": "X", "timestamp": {"seconds": 1, "seconds": 2}}`, false},
	{`{"event": "X", "timestamp": {"Seconds": 1}}`, false},
	{`{"event": "X", "timestamp": {"seconds": "1"}}`, false},
	{`{"event": "X", "timestamp": []}`, false},
	{`{"event": 5}`, false},
	{`{"event": "caf\u00e9"}`, false},
	{`{"event": "café"}`, false},
	{`{"Event": "X"}`, false},
	{`{"EVENT": "X", "event": "Y"}`, false},
	{`{"ev\u0065nt": "X"}`, false},
	{`{"event": "X", "event": "Y"}`, false},
	{`{"id": 1, "id": 2, "return": {}}`, false},
	{`{"error": {"class": "GenericError", "desc": "no"}, "id": "qmpsh-1"}`, false},
	{`{"QMP": {"version": {}, "capabilities": []}}`, false},
	{`{"return": {}, "id": "qmpsh-1", "other": [1, {"a": null}]}`, true},
	{`{"return": {}, "unknown": 01}`, false},
	{`{"return": {}, "unknown": 1.}`, false},
	{`{"return": {}, "unknown": .5}`, false},
	{`{"return": {}, "unknown": -}`, false},
	{`{"return": {}, "unknown": 1e}`, false},
	{`{"return": {}, "unknown": tru}`, false},
	{`{"return": {}, "unknown": nul}`, false},
	{`{"return": {}, "unknown": "a` + "\x01" + `"}`, false},
	{`{"return": {}, "unknown": "\x"}`, false},
	{"{\"return\": \"\xff\xfe\"}", true},
	{`{"return": [1,]}`, false},
	{`{"return": {"a":1,}}`, false},
	{`{"return": {"a" 1}}`, false},
	{`{"return": {}}x`, false},
	{`{"return": {}} {}`, false},
	{`{"return": {}`, false},
	{`{}`, true},
	{`[]`, false},
	{`null`, false},
	{`"x"`, false},
	{``, false},
	// QEMU's own layout, which decodeEvent matches as fixed text.
	{`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "X", "data": {"s": "0123456789abcdef\"x\u0041", "n": [-1.5e3, 0, 12345678901234567890]}}`, true},
	{`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "X", "data": null}`, true},
	{`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "X", "data": "` + "\x01" + `"}`, false},
	{`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "X", "data": {"a": 1,}}`, false},
	{`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "X", "data": {}, "data": {}}`, false},
	{`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "X", "event": "Y"}`, false},
	{`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "X", "Data": 1}`, false},
	{`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "X", "id": 1}`, true},
	{`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "X"}  ` + "\r", true},
	{`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "X"} x`, false},
	{`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "X"`, false},
	{`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "X", "data": {"a": [1, 2]`, false},
	{`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "X", "data": `, false},
	{`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "caf\u00e9"}`, false},
	{`{"timestamp": {"seconds": 01, "microseconds": 2}, "event": "X"}`, false},
	{`{"timestamp": {"seconds": 1, "microseconds": 2.5}, "event": "X"}`, false},
	{`{"timestamp": {"seconds": -1, "microseconds": -1}, "event": "X"}`, true},
	{`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": ""}`, true},
	{`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": null}`, true},
	{`{"return": ` + string(bytes.Repeat([]byte("["), 2000)) + string(bytes.Repeat([]byte("]"), 2000)) + `}`, false},
	{`{"return": ` + string(bytes.Repeat([]byte("["), 20000)) + string(bytes.Repeat([]byte("]"), 20000)) + `}`, false},
}

// TestDecodeFast checks decodeFast against json.Unmarshal, which it must
// match whenever it does not defer to it.
func TestDecodeFast(t *testing.T) {
	for _, tc := range decodeCases {
		took := checkDecodeFast(t, []byte(tc.msg))
		if took != tc.fast {
			t.Errorf("decodeFast(%.80s) = %v, want %v", tc.msg, took, tc.fast)
		}
	}
}

// TestDecodeEvent checks that decodeEvent takes events laid out as QEMU
// lays them out, and nothing else: a message it takes must decode as
// json.Unmarshal decodes it (checkDecodeFast), and one it turns down goes
// on to the rest of decodeFast.
func TestDecodeEvent(t *testing.T) {
	for _, tc := range decodeCases {
		var r reply
		took := r.decodeEvent([]byte(tc.msg), nil)
		qemu := strings.HasPrefix(tc.msg, `{"timestamp": {"seconds": `) && strings.Contains(tc.msg, `}, "event": "`)
		switch {
		case took && !tc.fast:
			t.Errorf("decodeEvent took %.80s, which decodeFast must not", tc.msg)
		case !took && tc.fast && qemu && !strings.Contains(tc.msg, `"id"`):
			t.Errorf("decodeEvent did not take %.80s", tc.msg)
		}
	}
}

// TestScanString checks scanString against json.Valid with each kind of
// byte it tests 8 at a time at each position of a string, so that every
// lane of a word and the tail after the last whole word are covered.
func TestScanString(t *testing.T) {
	specials := []string{`"`, `\`, `\n`, `\u00e9`, `\u00`, `\x`, "\x00", "\x1f", "\x7f", "\xff", " ", "\xe2\x82\xac"}
	for n := 0; n <= 20; n++ {
		for at := 0; at <= n; at++ {
			for _, sp := range specials {
				body := strings.Repeat("a", at) + sp + strings.Repeat("b", n-at)
				for _, tail := range []string{"", `"`, `" , 1`} {
					b := []byte(`"` + body + tail)
					end := scanString(b, 0)
					// The string is valid and ends where json.Valid finds
					// it ends, or is invalid for both.
					want := -1
					for j := 2; j <= len(b); j++ {
						if b[j-1] == '"' && json.Valid(b[:j]) {
							want = j
							break
						}
					}
					if end != want {
						t.Fatalf("scanString(%q) = %d, want %d", b, end, want)
					}
				}
			}
		}
	}
}

func FuzzDecodeFast(f *testing.F) {
	for _, tc := range decodeCases {
		f.Add([]byte(tc.msg))
	}
	f.Fuzz(func(t *testing.T, msg []byte) { checkDecodeFast(t, msg) })
}

// checkDecodeFast reports whether decodeFast decoded msg itself, failing
// t if it did so differently from json.Unmarshal.
func checkDecodeFast(t *testing.T, msg []byte) bool {
	t.Helper()
	var fast reply
	if !fast.decodeFast(msg, nil) {
		return false
	}
	var slow reply
	if err := json.Unmarshal(msg, &slow); err != nil {
		t.Fatalf("decodeFast took %q, which json.Unmarshal rejects: %v", msg, err)
	}
	same := func(a, b json.RawMessage) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }
	ok := same(fast.QMP, slow.QMP) && same(fast.ID, slow.ID) && same(fast.Return, slow.Return) &&
		same(fast.Data, slow.Data) && fast.Event == slow.Event && fast.Error == nil && slow.Error == nil &&
		fast.Timestamp == nil && func() bool {
		fts, fok := fast.stamp()
		sts, sok := slow.stamp()
		return fok == sok && fts == sts
	}()
	if !ok {
		t.Fatalf("decodeFast(%q) = %+v\njson.Unmarshal gives %+v", msg, fast, slow)
	}
	return true
}

func fastpathContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestSendNowLeavesTheRestToTheWriter sends a request far bigger than the
// socket's buffer as the only call, to a server that is not reading yet:
// protocol.SendNow writes what the socket takes and the writer goroutine
// the rest, and the server must see one intact request.
func TestSendNowLeavesTheRestToTheWriter(t *testing.T) {
	s := qmptest.NewServer(func(c *qmptest.Conn) {
		if c.Greet() != nil {
			return
		}
		time.Sleep(100 * time.Millisecond) // let the client's writes pile up
		qmptest.Serve(c, false)
	})
	defer s.Close()
	c := NewClient(WithMaxMessageSize(8 << 20))
	ctx := fastpathContext(t)
	if err := c.Connect(ctx, s.Addr); err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	blob := strings.Repeat("0123456789", 300_000) // 3 MB
	ret, err := c.Execute(ctx, "echo", map[string]string{"blob": blob})
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Blob string }
	if err := json.Unmarshal(ret, &got); err != nil || got.Blob != blob {
		t.Fatalf("echo returned %d bytes (%v), want the %d sent", len(got.Blob), err, len(blob))
	}
	if _, err := c.Execute(ctx, "query-status", nil); err != nil {
		t.Fatal(err)
	}
}

// TestEventsReachListenersBeforeTheReply checks what the shell relies on:
// when Execute returns, the events the server sent before the reply are
// already counted by Len, batching by handOn notwithstanding.
func TestEventsReachListenersBeforeTheReply(t *testing.T) {
	s := qmptest.NewServer(qmptest.Standard)
	defer s.Close()
	c := NewClient()
	ctx := fastpathContext(t)
	if err := c.Connect(ctx, s.Addr); err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	l := c.Listen("E")
	defer l.Close()
	for round, n := range []int{1, 3000} { // within the channel's buffer, then beyond it
		if _, err := c.Execute(ctx, "emit", map[string]any{"name": "E", "count": n}); err != nil {
			t.Fatal(err)
		}
		if got := l.Len(); got != n {
			t.Fatalf("round %d: Len() = %d right after Execute, want %d", round, got, n)
		}
		for i := range n {
			if ev := <-l.Events(); ev.Name != "E" {
				t.Fatalf("round %d: event %d is %q", round, i, ev.Name)
			}
		}
		if got := l.Len(); got != 0 {
			t.Fatalf("round %d: Len() = %d after receiving all", round, got)
		}
	}
}

// TestListenerCloseDiscardsBuffered checks that events buffered in the
// channel are not received after Close, as with an unbuffered channel.
func TestListenerCloseDiscardsBuffered(t *testing.T) {
	s := qmptest.NewServer(qmptest.Standard)
	defer s.Close()
	c := NewClient()
	ctx := fastpathContext(t)
	if err := c.Connect(ctx, s.Addr); err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	l := c.Listen()
	if _, err := c.Execute(ctx, "emit", map[string]any{"name": "E", "count": 10}); err != nil {
		t.Fatal(err)
	}
	if got := l.Len(); got != 10 {
		t.Fatalf("Len() = %d, want 10", got)
	}
	l.Close()
	if ev, ok := <-l.Events(); ok {
		t.Fatalf("received %s after Close", ev.Name)
	}
	if got := l.Len(); got != 0 {
		t.Fatalf("Len() = %d after Close", got)
	}
}

// BenchmarkDecode compares decodeFast with json.Unmarshal on the messages
// it exists for.
func BenchmarkDecode(b *testing.B) {
	msgs := []struct{ name, msg string }{
		{"event", `{"timestamp": {"seconds": 1764097048, "microseconds": 123456}, "event": "BLOCK_JOB_COMPLETED", "data": {"device": "drive0", "len": 1073741824, "offset": 1073741824, "speed": 0, "type": "mirror"}}`},
		{"reply", `{"return": {"status": "running", "singlestep": false, "running": true}, "id": "qmpsh-12"}`},
	}
	for _, m := range msgs {
		msg := []byte(m.msg)
		b.Run("fast/"+m.name, func(b *testing.B) {
			names := &names{m: map[string]string{}}
			b.ReportAllocs()
			for range b.N {
				r := reply{raw: msg}
				if !r.decodeFast(msg, names) {
					b.Fatal("not taken")
				}
			}
		})
		b.Run("json/"+m.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				r := reply{raw: msg}
				if err := json.Unmarshal(msg, &r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// greetingCases are greetings decodeGreeting takes (ok) or leaves to
// json.Unmarshal.
var greetingCases = []struct {
	msg string
	ok  bool
}{
	{`{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}`, true},
	{`{"QMP": {"version": {"qemu": {"micro": 0, "minor": 0, "major": 9}, "package": ""}, "capabilities": []}}` + "\r\n", true},
	{`{"QMP": {"version": {"qemu": {"micro": 1, "minor": 2, "major": 3}, "package": "x"}, "capabilities": ["oob", "x-new"]}}`, true},
	{`{"QMP": {"version": {"qemu": {"micro": -1, "minor": 2, "major": 3}, "package": "x"}, "capabilities": ["oob"]}}`, true},
	// Escapes, another order, other spacing, extra members: json.Unmarshal's.
	{`{"QMP": {"version": {"qemu": {"micro": 1, "minor": 2, "major": 3}, "package": "\u0078"}, "capabilities": ["oob"]}}`, false},
	{`{"QMP": {"version": {"qemu": {"major": 3, "minor": 2, "micro": 1}, "package": "x"}, "capabilities": ["oob"]}}`, false},
	{`{"QMP":{"version":{"qemu":{"micro":1,"minor":2,"major":3},"package":"x"},"capabilities":["oob"]}}`, false},
	{`{"QMP": {"version": {"qemu": {"micro": 1, "minor": 2, "major": 3}, "package": "x"}, "capabilities": ["oob"], "more": 1}}`, false},
	{`{"QMP": {"version": {"qemu": {"micro": 1.5, "minor": 2, "major": 3}, "package": "x"}, "capabilities": ["oob"]}}`, false},
	{`{"QMP": {"version": {"qemu": {"micro": 1, "minor": 2, "major": 3}, "package": "x"}, "capabilities": ["oob",]}}`, false},
	{`{"QMP": {"version": {"qemu": {"micro": 1, "minor": 2, "major": 3}, "package": "x"}, "capabilities": ["oob"]}} x`, false},
	{`{"QMP": {"version": {"qemu": {"micro": 1, "minor": 2, "major": 3}, "package": "x"}, "capabilities": ["oob"]`, false},
}

// TestDecodeGreeting checks that decodeGreeting takes QEMU's layout and
// reads it as json.Unmarshal does, and leaves everything else alone.
func TestDecodeGreeting(t *testing.T) {
	for _, tc := range greetingCases {
		if got := checkDecodeGreeting(t, []byte(tc.msg)); got != tc.ok {
			t.Errorf("decodeGreeting(%q) took it: %v, want %v", tc.msg, got, tc.ok)
		}
	}
}

func FuzzDecodeGreeting(f *testing.F) {
	for _, tc := range greetingCases {
		f.Add([]byte(tc.msg))
	}
	f.Fuzz(func(t *testing.T, msg []byte) { checkDecodeGreeting(t, msg) })
}

// checkDecodeGreeting reports whether decodeGreeting decoded msg itself,
// failing t if it did so differently from unmarshalGreeting.
func checkDecodeGreeting(t *testing.T, msg []byte) bool {
	t.Helper()
	fast, ok := decodeGreeting(msg)
	if !ok {
		return false
	}
	slow, err := unmarshalGreeting(msg)
	if err != nil {
		t.Fatalf("decodeGreeting took %q, which json.Unmarshal rejects: %v", msg, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("decodeGreeting(%q) = %+v\njson.Unmarshal gives %+v", msg, fast, slow)
	}
	return true
}
