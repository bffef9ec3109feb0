package qmptest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func newStandard(t testing.TB) *Server {
	s := NewServer(Standard)
	t.Cleanup(s.Close)
	return s
}

func TestGreeting(t *testing.T) {
	s := newStandard(t)
	rc := dial(t, s.Addr)
	got := string(rc.line())
	want := `{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7"}, "capabilities": ["oob"]}}` + "\r\n"
	if got != want {
		t.Fatalf("greeting\n got %q\nwant %q", got, want)
	}
}

func TestNegotiationWithOOB(t *testing.T) {
	rc := dial(t, newStandard(t).Addr)
	rc.line()
	rc.send(`{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}, "id": 1}`)
	if got := string(rc.line()); got != "{\"return\": {}, \"id\": 1}\r\n" {
		t.Fatalf("got %q", got)
	}
	rc.send(`{"exec-oob": "echo", "arguments": {"x": 1}, "id": "o"}`)
	m := rc.msg()
	jsonEqual(t, m["return"], `{"x": 1}`)
	jsonEqual(t, m["id"], `"o"`)
	rc.send(`{"execute": "qmp_capabilities", "id": 2}`)
	if class, desc := errorClass(t, rc.msg()); class != "CommandNotFound" || !strings.Contains(desc, "already complete") {
		t.Fatalf("second negotiation: %s %s", class, desc)
	}
}

func TestEchoObjectID(t *testing.T) {
	rc := dial(t, newStandard(t).Addr)
	rc.negotiate()
	// The id and the arguments must come back byte for byte, layout and
	// all, since QMP says the id is echoed verbatim.
	rc.send(`{"execute":"echo","arguments":{"b": [1, 2.50, "x"], "a": null},"id":{"seq": [7, "z"], "n": null}}`)
	got := string(rc.line())
	want := `{"return": {"b": [1, 2.50, "x"], "a": null}, "id": {"seq": [7, "z"], "n": null}}` + "\r\n"
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	rc.send(`{"execute": "echo", "id": null}`)
	if got := string(rc.line()); got != "{\"return\": {}, \"id\": null}\r\n" {
		t.Fatalf("echo without arguments, null id: %q", got)
	}
}

func TestPipelinedWithoutSeparators(t *testing.T) {
	rc := dial(t, newStandard(t).Addr)
	rc.line()
	var b strings.Builder
	b.WriteString(`{"execute":"qmp_capabilities","id":0}`)
	const n = 50
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, `{"execute":"echo","arguments":{"i":%d},"id":%d}`, i, i)
	}
	rc.send(b.String())
	for i := 0; i <= n; i++ {
		m := rc.msg()
		jsonEqual(t, m["id"], fmt.Sprint(i))
		if i > 0 {
			jsonEqual(t, m["return"], fmt.Sprintf(`{"i":%d}`, i))
		}
	}
}

func TestRequestSplitAcrossWrites(t *testing.T) {
	rc := dial(t, newStandard(t).Addr)
	rc.negotiate()
	req := `{"execute": "echo", "arguments": {"s": "}{\"]"}, "id": 5}`
	for i := range len(req) {
		rc.send(req[i : i+1])
	}
	m := rc.msg()
	jsonEqual(t, m["return"], `{"s": "}{\"]"}`)
}

func TestCommandNotFound(t *testing.T) {
	rc := dial(t, newStandard(t).Addr)
	rc.negotiate()
	rc.send(`{"execute": "foo", "id": "x"}`)
	if got := string(rc.line()); got != `{"id": "x", "error": {"class": "CommandNotFound", "desc": "The command foo has not been found"}}`+"\r\n" {
		t.Fatalf("got %q", got)
	}
}

func TestBeforeNegotiation(t *testing.T) {
	rc := dial(t, newStandard(t).Addr)
	rc.line()
	rc.send(`{"execute": "query-status", "id": 1}`)
	m := rc.msg()
	class, desc := errorClass(t, m)
	if class != "CommandNotFound" || desc != "Expecting capabilities negotiation with 'qmp_capabilities'" {
		t.Fatalf("got %s: %s", class, desc)
	}
	jsonEqual(t, m["id"], "1")
	// exec-oob is not even a valid member before oob is enabled.
	rc.send(`{"exec-oob": "qmp_capabilities"}`)
	if _, desc := errorClass(t, rc.msg()); desc != "QMP input member 'exec-oob' is unexpected" {
		t.Fatalf("got %s", desc)
	}
	rc.negotiate2()
}

// negotiate2 completes negotiation after the greeting was already read.
func (rc *rawClient) negotiate2() {
	rc.t.Helper()
	rc.send(`{"execute": "qmp_capabilities"}`)
	if m := rc.msg(); string(m["return"]) != "{}" {
		rc.t.Fatalf("negotiation failed: %s", m["error"])
	}
}

func TestMalformed(t *testing.T) {
	rc := dial(t, newStandard(t).Addr)
	rc.negotiate()
	cases := []struct{ in, desc string }{
		// A bare token ends only at a delimiter, as in QEMU.
		{"garbage ", "JSON parse error, invalid keyword 'garbage'"},
		{"xyz\n", "JSON parse error, invalid keyword 'xyz'"},
		{"[1, }", "JSON parse error, "},
		{`{"execute": nope, "id": 1}`, "JSON parse error, "},
		{`{"execute": "x",}`, "JSON parse error, "},
		{"}", "JSON parse error, expecting value"},
		{"[1, 2]", "QMP input must be a JSON object"},
		{`"str"`, "QMP input must be a JSON object"},
		{"42 ", "QMP input must be a JSON object"},
	}
	for _, c := range cases {
		rc.send(c.in)
		m := rc.msg()
		if _, ok := m["id"]; ok {
			t.Errorf("%q: error reply has an id: %v", c.in, m)
		}
		class, desc := errorClass(t, m)
		if class != "GenericError" || !strings.HasPrefix(desc, c.desc) {
			t.Errorf("%q: got %s %q, want GenericError %q", c.in, class, desc, c.desc)
		}
	}
	// Invalid requests that are objects keep their id, as in QEMU.
	invalid := []struct{ in, desc string }{
		{`{"execute": 1, "id": 1}`, "QMP input member 'execute' must be a string"},
		{`{"execute": "echo", "arguments": [], "id": 1}`, "QMP input member 'arguments' must be an object"},
		{`{"execute": "echo", "foo": 2, "id": 1}`, "QMP input member 'foo' is unexpected"},
		{`{"id": 1}`, "QMP input lacks member 'execute'"},
		{`{"execute": "query-status", "arguments": {"x": 1}, "id": 1}`, "Parameter 'x' is unexpected"},
	}
	for _, c := range invalid {
		rc.send(c.in)
		m := rc.msg()
		jsonEqual(t, m["id"], "1")
		if _, desc := errorClass(t, m); desc != c.desc {
			t.Errorf("%q: got %q, want %q", c.in, desc, c.desc)
		}
	}
	// The stream recovers after all of that.
	rc.send(`{"execute": "echo", "arguments": {"ok": true}, "id": 2}`)
	jsonEqual(t, rc.msg()["return"], `{"ok": true}`)
}

func TestStopEmitsEventBeforeReply(t *testing.T) {
	rc := dial(t, newStandard(t).Addr)
	rc.negotiate()
	rc.send(`{"execute": "stop", "id": 1}`)
	ev := rc.msg()
	jsonEqual(t, ev["event"], `"STOP"`)
	var ts struct{ Seconds, Microseconds int64 }
	if err := json.Unmarshal(ev["timestamp"], &ts); err != nil || ts.Seconds < 1e9 || ts.Microseconds < 0 || ts.Microseconds >= 1e6 {
		t.Fatalf("bad timestamp %s", ev["timestamp"])
	}
	if _, ok := ev["data"]; ok {
		t.Fatalf("STOP has data: %v", ev)
	}
	jsonEqual(t, rc.msg()["return"], "{}")
	rc.send(`{"execute": "query-status", "id": 2}`)
	jsonEqual(t, rc.msg()["return"], `{"status": "paused", "singlestep": false, "running": false}`)
	// Like QEMU, stop on a paused VM changes nothing and says nothing.
	rc.send(`{"execute": "stop", "id": 3}{"execute": "cont", "id": 4}`)
	jsonEqual(t, rc.msg()["id"], "3")
	jsonEqual(t, rc.msg()["event"], `"RESUME"`)
	jsonEqual(t, rc.msg()["id"], "4")
	rc.send(`{"execute": "query-status", "id": 5}`)
	jsonEqual(t, rc.msg()["return"], `{"status": "running", "singlestep": false, "running": true}`)
}

func TestEmit(t *testing.T) {
	rc := dial(t, newStandard(t).Addr)
	rc.negotiate()
	const n = 5000
	rc.send(fmt.Sprintf(`{"execute": "emit", "arguments": {"name": "FLOOD", "count": %d, "data": {"k": [1]}}, "id": 9}`, n))
	for i := range n {
		m := rc.msg()
		if string(m["event"]) != `"FLOOD"` || string(m["data"]) != `{"k": [1]}` {
			t.Fatalf("event %d: %v", i, m)
		}
	}
	m := rc.msg()
	jsonEqual(t, m["id"], "9")
	jsonEqual(t, m["return"], "{}")
	rc.send(`{"execute": "emit", "id": 10}`)
	if _, desc := errorClass(t, rc.msg()); desc != "Parameter 'name' is missing" {
		t.Fatal(desc)
	}
}

func TestSleepDoesNotBlockLaterRequests(t *testing.T) {
	rc := dial(t, newStandard(t).Addr)
	rc.negotiate()
	start := time.Now()
	rc.send(`{"execute": "sleep", "arguments": {"ms": 200}, "id": "slow"}{"execute": "echo", "id": "fast"}`)
	jsonEqual(t, rc.msg()["id"], `"fast"`)
	jsonEqual(t, rc.msg()["id"], `"slow"`)
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("sleep replied after %v", d)
	}
}

func TestQuitCloses(t *testing.T) {
	rc := dial(t, newStandard(t).Addr)
	rc.negotiate()
	rc.send(`{"execute": "quit", "id": 1}`)
	jsonEqual(t, rc.msg()["event"], `"SHUTDOWN"`)
	jsonEqual(t, rc.msg()["id"], "1")
	if b, err := rc.r.ReadByte(); err != io.EOF {
		t.Fatalf("after quit: %q, %v; want EOF", b, err)
	}
}

func TestQueryCommands(t *testing.T) {
	rc := dial(t, newStandard(t).Addr)
	rc.negotiate()
	rc.send(`{"execute": "query-commands"}`)
	var cmds []struct{ Name string }
	if err := json.Unmarshal(rc.msg()["return"], &cmds); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, c := range cmds {
		names[c.Name] = true
	}
	for _, want := range []string{"qmp_capabilities", "echo", "query-status", "stop", "cont", "emit", "sleep", "quit", "query-commands"} {
		if !names[want] {
			t.Errorf("query-commands lacks %s", want)
		}
	}
}

func TestGreetWithoutOOB(t *testing.T) {
	s := NewServer(func(c *Conn) {
		c.GreetWith()
		Serve(c, false)
	})
	defer s.Close()
	rc := dial(t, s.Addr)
	jsonEqual(t, rc.msg()["QMP"], `{"version": `+GreetingVersion+`, "capabilities": []}`)
	rc.send(`{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}`)
	if _, desc := errorClass(t, rc.msg()); desc != "Capability oob not available" {
		t.Fatal(desc)
	}
	rc.negotiate2()
	rc.send(`{"exec-oob": "echo"}`)
	if _, desc := errorClass(t, rc.msg()); desc != "QMP input member 'exec-oob' is unexpected" {
		t.Fatal(desc)
	}
}

func TestCustomHandlerFaults(t *testing.T) {
	s := NewServer(func(c *Conn) {
		c.Greet()
		req, err := c.ReadRequest()
		if err != nil {
			return
		}
		c.Reply(req.ID, json.RawMessage(`{"a":1}`))
		c.WriteRaw([]byte(`{"return": {}, "id"`)) // half a message
	})
	defer s.Close()
	rc := dial(t, s.Addr)
	rc.line()
	rc.send(`{"execute": "x", "id": [1]}`)
	if got := string(rc.line()); got != "{\"return\": {\"a\":1}, \"id\": [1]}\r\n" {
		t.Fatalf("got %q", got)
	}
	b, err := io.ReadAll(rc.r)
	if string(b) != `{"return": {}, "id"` || err != nil {
		t.Fatalf("got %q, %v", b, err)
	}
}

func TestConcurrentWritersKeepMessagesWhole(t *testing.T) {
	s := NewServer(func(c *Conn) {
		c.Greet()
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := range 200 {
					c.Event("E", map[string]int{"g": g, "i": i})
				}
			})
		}
		Serve(c, false)
		wg.Wait()
	})
	defer s.Close()
	rc := dial(t, s.Addr)
	rc.line()
	rc.send(`{"execute": "qmp_capabilities", "id": 1}`)
	events, replied := 0, false
	for events < 800 || !replied {
		m := rc.msg() // fails on a torn message
		if m["event"] != nil {
			events++
		} else {
			replied = true
		}
	}
}

func TestReplyErrorAndEventHelpers(t *testing.T) {
	s := NewServer(func(c *Conn) {
		c.ReplyError(nil, "GenericError", `quote " and <tag>`)
		c.Event("NODATA", nil)
		if c.Reply(json.RawMessage("{bad"), nil) == nil {
			c.WriteRaw([]byte("invalid id accepted\r\n"))
		}
		c.WriteRaw([]byte("end\r\n"))
	})
	defer s.Close()
	rc := dial(t, s.Addr)
	m := rc.msg()
	if _, desc := errorClass(t, m); desc != `quote " and <tag>` {
		t.Fatal(desc)
	}
	if _, ok := m["id"]; ok {
		t.Fatal("id present")
	}
	if m := rc.msg(); m["data"] != nil || string(m["event"]) != `"NODATA"` {
		t.Fatal(m)
	}
	if got := string(rc.line()); got != "end\r\n" {
		t.Fatal(got)
	}
}

func TestCloseWhileHandlerReads(t *testing.T) {
	errc := make(chan error, 1)
	s := NewServer(func(c *Conn) {
		c.Greet()
		_, err := c.ReadRequest()
		errc <- err
	})
	rc := dial(t, s.Addr)
	rc.line() // the handler is now in ReadRequest, or about to be

	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadRequest after Close: %v, want net.ErrClosed", err)
	}
	s.Close() // idempotent
	if _, err := rc.r.ReadByte(); err != io.EOF {
		t.Fatalf("client read after Close: %v", err)
	}
	if _, err := net.Dial("unix", s.Addr); err == nil {
		t.Fatal("server still accepts after Close")
	}
}

func TestCloseUnblocksWriterAndDone(t *testing.T) {
	waiting := make(chan struct{})
	s := NewServer(func(c *Conn) {
		close(waiting)
		<-c.Done()
	})
	dial(t, s.Addr)
	<-waiting
	s.Close()

	// A flood to a client that never reads blocks in a write; Close must
	// still return.
	s = newStandard(t)
	rc := dial(t, s.Addr)
	rc.negotiate()
	rc.send(`{"execute": "emit", "arguments": {"name": "X", "count": 10000000}}`)
	time.Sleep(50 * time.Millisecond) // let the writer fill the socket
	s.Close()
}

func TestReadRequestEOF(t *testing.T) {
	errs := make(chan error, 2)
	s := NewServer(func(c *Conn) {
		_, err := c.ReadRequest()
		errs <- err
	})
	defer s.Close()
	c1, err := net.Dial("unix", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	c1.Write([]byte("  \r\n"))
	c1.Close()
	if err := <-errs; err != io.EOF {
		t.Fatalf("clean close: %v", err)
	}
	c2, err := net.Dial("unix", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	c2.Write([]byte(`{"execute": "x"`))
	c2.Close()
	if err := <-errs; err != io.ErrUnexpectedEOF {
		t.Fatalf("close mid-request: %v", err)
	}
}

func BenchmarkEchoRoundTrip(b *testing.B) {
	s := newStandard(b)
	rc := dial(b, s.Addr)
	rc.negotiate()
	rc.c.SetDeadline(time.Time{})
	req := []byte(`{"execute": "echo", "arguments": {"x": 1}, "id": 1}`)
	for b.Loop() {
		rc.c.Write(req)
		if _, err := rc.r.ReadSlice('\n'); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEchoPipelined(b *testing.B) {
	s := newStandard(b)
	rc := dial(b, s.Addr)
	rc.negotiate()
	rc.c.SetDeadline(time.Time{})
	const batch = 64
	reqs := []byte(strings.Repeat(`{"execute": "echo", "arguments": {"x": 1}, "id": 1}`, batch))
	for b.Loop() {
		rc.c.Write(reqs)
		for range batch {
			if _, err := rc.r.ReadSlice('\n'); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/req")
}

func BenchmarkEmit(b *testing.B) {
	s := newStandard(b)
	rc := dial(b, s.Addr)
	rc.negotiate()
	rc.c.SetDeadline(time.Time{})
	const n = 10000
	req := []byte(fmt.Sprintf(`{"execute": "emit", "arguments": {"name": "E", "count": %d, "data": {"a": 1}}}`, n))
	for b.Loop() {
		rc.c.Write(req)
		for range n + 1 {
			if _, err := rc.r.ReadSlice('\n'); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
}

func TestOversizeRequest(t *testing.T) {
	// Restored by a cleanup registered before the server's, so that it runs
	// after the handlers are gone.
	old := maxRequestSize
	t.Cleanup(func() { maxRequestSize = old })
	maxRequestSize = 1024
	rc := dial(t, newStandard(t).Addr)
	rc.negotiate()
	big := strings.Repeat("a", 4096)
	rc.send(`{"execute": "echo", "arguments": {"s": "` + big + `"}, "id": 1}` + big + " ")
	for range 2 {
		m := rc.msg()
		if _, ok := m["id"]; ok {
			t.Fatalf("oversize error has an id: %v", m)
		}
		if _, desc := errorClass(t, m); !strings.HasPrefix(desc, "JSON parse error") {
			t.Fatal(desc)
		}
	}
	rc.send(`{"execute": "echo", "id": 2}`)
	jsonEqual(t, rc.msg()["id"], "2")
}
