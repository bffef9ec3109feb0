package proxy

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/protocol"
	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// A client that never reads while QEMU floods events is closed, with a
// log line naming it and saying why; the other clients' calls go on
// meanwhile. Its queue is bounded by messages (Config.QueueLen) and by
// bytes (MaxQueuedBytes), whichever it fills first.
func TestSlowClientClosed(t *testing.T) {
	t.Run("Messages", func(t *testing.T) {
		testSlowClient(t, Config{QueueLen: 256}, 200, 200, "its queue of messages is full")
	})
	t.Run("Bytes", func(t *testing.T) {
		// 20 events of 64 KiB a batch: past 1 MiB in a batch or two
		// (the socket's buffers take some), far below 1024 messages.
		testSlowClient(t, Config{QueueBytes: 1 << 20}, 20, 64<<10, "more than 1 MiB of messages wait for it")
	})
}

// testSlowClient floods events in batches of batch, each padded with pad
// bytes, until the proxy with queue closes the client that does not read,
// saying why.
func testSlowClient(t *testing.T, queue Config, batch, pad int, why string) {
	srv := qmptest.NewServer(qmptest.Standard)
	defer srv.Close()
	h := startProxy(t, srv.Addr, func(c *Config) { c.QueueLen, c.QueueBytes = queue.QueueLen, queue.QueueBytes })
	ctx := ctxT(t)

	slow := dialRaw(t, h.path)
	slow.negotiate() // then never reads again
	fast := h.client()
	ev := fast.Listen("FLOOD")
	defer ev.Close()

	// Each emit's reply comes after its events, so the fast client never
	// has more than one batch queued; the slow one falls further behind
	// with each.
	const batches = 100
	for i := 0; !h.logs.has("closing client") && i < batches; i++ {
		args := map[string]any{"name": "FLOOD", "count": batch, "data": map[string]string{"pad": strings.Repeat("x", pad)}}
		if _, err := fast.Execute(ctx, "emit", args); err != nil {
			t.Fatalf("emit %d: %v", i, err)
		}
		for range batch {
			select {
			case <-ev.Events():
			case <-ctx.Done():
				t.Fatal("the fast client lost events")
			}
		}
		if _, err := fast.Execute(ctx, "query-status", nil); err != nil {
			t.Fatalf("query-status after batch %d: %v", i, err)
		}
	}
	line := h.logs.wait(t, "closing client", 1)
	if !strings.Contains(line, "client 1 ") || !strings.Contains(line, why) {
		t.Errorf("log line %q does not name the slow client (client 1) or say %q", line, why)
	}
	// The slow client's connection ends after what was written.
	slow.conn.SetReadDeadline(deadline())
	if _, err := io.Copy(io.Discard, slow.conn); err != nil {
		t.Errorf("reading the slow client's connection to its end: %v", err)
	}
	if _, err := fast.Execute(ctx, "query-status", nil); err != nil {
		t.Fatalf("the fast client after the slow one was closed: %v", err)
	}
}

// Events QEMU sent before a reply reach the client before that reply.
func TestEventsBeforeReply(t *testing.T) {
	srv := qmptest.NewServer(qmptest.Standard)
	defer srv.Close()
	h := startProxy(t, srv.Addr, nil)
	a, b := dialRaw(t, h.path), dialRaw(t, h.path)
	a.negotiate()
	b.negotiate()
	a.send(`{"execute":"emit","arguments":{"name":"E","count":50,"data":{"n":1}},"id":"a1"}`)
	for i := range 50 {
		if got := a.recv(); !strings.Contains(got, `"event":"E"`) {
			t.Fatalf("a: message %d = %s, want event E", i, got)
		}
	}
	if got := a.recv(); got != `{"id":"a1","return":{}}` {
		t.Fatalf("a: after the events %s, want the reply", got)
	}
	// b, which asked for nothing, got the same events and no reply.
	for i := range 50 {
		if got := b.recv(); !strings.Contains(got, `"event":"E"`) {
			t.Fatalf("b: message %d = %s, want event E", i, got)
		}
	}
	b.send(`{"execute":"query-status","id":"b1"}`)
	if got := b.recv(); !strings.HasPrefix(got, `{"id":"b1","return":`) {
		t.Fatalf("b: %s, want its own reply", got)
	}
}

// holdingQEMU is a fake QEMU that answers qmp_capabilities, then holds
// the next command until release is closed. With answer, it then replies
// {"held": "yes"} to it and serves on as qmptest.Standard does; without,
// it never replies.
func holdingQEMU(t *testing.T, release <-chan struct{}, answer bool) *qmptest.Server {
	srv := qmptest.NewServer(func(c *qmptest.Conn) {
		if c.Greet() != nil {
			return
		}
		req, err := c.ReadRequest()
		if err != nil || c.Reply(req.ID, map[string]any{}) != nil {
			return
		}
		if req, err = c.ReadRequest(); err != nil {
			return
		}
		select {
		case <-release:
		case <-c.Done():
			return
		}
		if answer {
			c.Reply(req.ID, map[string]string{"held": "yes"})
			qmptest.Serve(c, true)
		}
	})
	t.Cleanup(srv.Close)
	return srv
}

// Replies the proxy makes itself keep their place behind the client's
// calls QEMU has not answered, as QEMU's own would.
func TestLocalRepliesKeepOrder(t *testing.T) {
	// QEMU holds its reply to the first command until the proxy has
	// seen everything after it.
	release := make(chan struct{})
	srv := holdingQEMU(t, release, true)
	sentEcho := make(chan struct{})
	var once sync.Once
	h := startProxy(t, srv.Addr, func(c *Config) {
		c.Policy.Deny = []string{"quit"}
		c.Trace = func(who string, dir protocol.Direction, msg []byte) {
			if who == "qemu" && dir == protocol.Sent && strings.Contains(string(msg), `"echo"`) {
				once.Do(func() { close(sentEcho) })
			}
		}
	})
	r := dialRaw(t, h.path)
	r.negotiate()
	r.send(`{"execute":"hold"}` + `{"execute":"quit"}` + `garbage` + `{"execute":"echo","arguments":{"n":2}}`)
	// The last request has gone to QEMU: the proxy has handled all.
	select {
	case <-sentEcho:
	case <-ctxT(t).Done():
		t.Fatal("echo never reached QEMU")
	}
	close(release)
	want := []string{
		`{"return":{"held":"yes"}}`,
		`{"error":{"class":"GenericError","desc":"command 'quit' is refused by the proxy: it matches --deny 'quit'"}}`,
		`{"error":{"class":"GenericError","desc":"JSON parse error, invalid keyword 'garbage'"}}`,
		`{"return":{"n":2}}`,
	}
	for _, w := range want {
		if got := r.recv(); got != w {
			t.Fatalf("got %s, want %s", got, w)
		}
	}
}

// A message past the size limit closes that client only.
func TestTooLongMessage(t *testing.T) {
	srv := qmptest.NewServer(qmptest.Standard)
	defer srv.Close()
	h := startProxy(t, srv.Addr, func(c *Config) { c.MaxMessageSize = 1000 })
	big, ok := dialRaw(t, h.path), dialRaw(t, h.path)
	big.negotiate()
	ok.negotiate()
	big.send(`{"execute":"echo","arguments":{"s":"` + strings.Repeat("x", 2000) + `"}}`)
	h.logs.wait(t, "longer than 1000 bytes", 1)
	big.conn.SetReadDeadline(deadline())
	if _, err := io.Copy(io.Discard, big.conn); err != nil {
		t.Errorf("the client with the long message: %v", err)
	}
	ok.send(`{"execute":"echo","arguments":{"s":"short"},"id":1}`)
	if got := ok.recv(); got != `{"id":1,"return":{"s":"short"}}` {
		t.Fatalf("the other client: %s", got)
	}
}

// exec-oob goes through when the client and QEMU both negotiated oob,
// and its reply, out of order, still finds its client.
func TestExecOOB(t *testing.T) {
	srv := qmptest.NewServer(qmptest.Standard)
	defer srv.Close()
	h := startProxy(t, srv.Addr, nil)
	r := dialRaw(t, h.path)
	r.recv()
	r.send(`{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}`)
	if got := r.recv(); got != `{"return":{}}` {
		t.Fatal(got)
	}
	r.send(`{"execute":"sleep","arguments":{"ms":200},"id":"slow"}{"exec-oob":"echo","arguments":{"x":1},"id":"oob"}`)
	got := []string{r.recv(), r.recv()}
	if got[0] != `{"id":"oob","return":{"x":1}}` || got[1] != `{"id":"slow","return":{}}` {
		t.Fatalf("replies %v", got)
	}
}

func TestPolicy(t *testing.T) {
	for _, tc := range []struct {
		p       Policy
		command string
		refused string // in the reason; "" passes
	}{
		{Policy{}, "quit", ""},
		{Policy{ReadOnly: true}, "query-status", ""},
		{Policy{ReadOnly: true}, "qom-list-types", ""},
		{Policy{ReadOnly: true}, "qom-set", "--read-only"},
		{Policy{ReadOnly: true}, "human-monitor-command", "--read-only"},
		{Policy{ReadOnly: true}, "quit", "--read-only"},
		{Policy{Deny: []string{"device_*", "quit"}}, "device_del", "--deny 'device_*'"},
		{Policy{Deny: []string{"device_*"}}, "device-list-properties", ""},
		{Policy{Allow: []string{"query-*"}}, "query-cpus-fast", ""},
		{Policy{Allow: []string{"query-*"}}, "stop", "no --allow"},
		{Policy{Allow: []string{"query-*"}, Deny: []string{"query-status"}}, "query-status", "--deny"},
		{Policy{ReadOnly: true, Allow: []string{"stop"}}, "stop", "--read-only"},
	} {
		why := tc.p.Refusal(tc.command)
		if (why == "") != (tc.refused == "") || !strings.Contains(why, tc.refused) {
			t.Errorf("%+v: %s: %q, want %q", tc.p, tc.command, why, tc.refused)
		}
	}
	if err := (&Policy{Deny: []string{"["}}).Check(); err == nil {
		t.Error("a bad glob passed Check")
	}
}

func TestValueEnd(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{`{"a":1}rest`, 7},
		{`{"a":"}"}`, 9},
		{`{"a":"\"}"}x`, 11},
		{`{"a":[1,{}]`, 0},
		{`[1,2] x`, 5},
		{`"str" `, 5},
		{`"unfinished`, 0},
		{`foo bar`, 3},
		{`foo`, 0},
		{`} x`, 1},
		{`123{`, 3},
	} {
		if got := valueEnd([]byte(tc.in)); got != tc.want {
			t.Errorf("valueEnd(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// How lexMessage cuts a client's stream; TestLikeQEMU checks the same
// inputs and more against QEMU itself.
func TestLexMessage(t *testing.T) {
	for _, tc := range []struct {
		in       string
		n, stray int
	}{
		{`{"a":1}rest`, 7, -1},
		{`{"a":"}"}`, 9, -1},
		{`{'a':'}'}x`, 9, -1},
		{`{'a':"'"}x`, 9, -1},
		{`{"a":"'"}x`, 9, -1},
		{`{"a":[1,{}]`, 0, -1},
		{`[1,2] x`, 5, -1},
		{`'str' `, 5, -1},
		{`'unfinished"`, 0, -1},
		{`foo'bar'`, 3, -1},              // a keyword, then a string
		{`foo`, 0, -1},                   // the keyword may go on
		{`} x`, 1, -1},                   // closes more than was open
		{`{]`, 2, -1},                    // likewise
		{`123{`, 3, -1},                  // a number, then a brace
		{`0e5`, 1, -1},                   // no exponent after a lone zero
		{`1.5e+3,`, 6, -1},               // then a comma
		{`@'abc}`, 1, 0},                 // a byte no token starts with
		{`-'x'`, 2, 0},                   // a sign, then no digit
		{`01`, 2, 0},                     // a leading zero
		{`1.'`, 3, 0},                    // a point, then no digit
		{"{'a':'b\nc'}", 8, 5},           // a newline ends the string, and the message
		{`{"a":"b\` + "\n" + `"}`, 9, 5}, // escaped too
		{"\"a\xfeb\"", 3, 0},
	} {
		n, stray := lexMessage([]byte(tc.in))
		if n != tc.n || stray != tc.stray {
			t.Errorf("lexMessage(%q) = %d, %d; want %d, %d", tc.in, n, stray, tc.n, tc.stray)
		}
		// The same, the bytes coming one at a time to one lexer, which
		// goes on from where it stopped.
		var lx lexer
		n, stray = 0, -1
		for k := 1; k <= len(tc.in) && n == 0; k++ {
			n, stray = lx.scan([]byte(tc.in[:k]))
		}
		if n != tc.n || stray != tc.stray {
			t.Errorf("%q a byte at a time: %d, %d; want %d, %d", tc.in, n, stray, tc.n, tc.stray)
		}
	}
}

func TestStandardJSON(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"execute":"query-status"}`, `{"execute":"query-status"}`},
		{`{'execute':'query-status'}`, `{"execute":"query-status"}`},
		{`{'id':'a\'b'}`, `{"id":"a'b"}`},
		{`{'id':'"q"'}`, `{"id":"\"q\""}`},
		{`{"id":"x\'y"}`, `{"id":"x'y"}`},
		{`{"id":"it's"}`, `{"id":"it's"}`},
		{`{'id':'\u00e9\/\\'}`, `{"id":"\u00e9\/\\"}`},
		{`['a',"b's",'c"d']`, `["a","b's","c\"d"]`},
		{`{'id':'x\q'}`, `{"id":"x\q"}`}, // an invalid escape stays one
	} {
		got := string(standardJSON([]byte(tc.in)))
		if got != tc.want {
			t.Errorf("standardJSON(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
	// Without a single quote, nothing is copied.
	in := []byte(`{"execute":"query-status"}`)
	if out := standardJSON(in); &out[0] != &in[0] {
		t.Error("standardJSON copied a value with no single quote")
	}
}

func TestReplaceID(t *testing.T) {
	for _, tc := range []struct {
		in, id, want string
	}{
		{`{"return": {}, "id": 7}`, `"x"`, `{"return": {}, "id": "x"}`},
		{`{"return": {}, "id": 7}`, ``, `{"return": {}}`},
		{`{"id": 7, "error": {"class": "A", "desc": "b"}}`, ``, `{"error": {"class": "A", "desc": "b"}}`},
		{`{"id": 7, "return": {"id": 1}}`, `{"a": [1]}`, `{"id": {"a": [1]}, "return": {"id": 1}}`},
	} {
		var idm member
		found := false
		err := members([]byte(tc.in), func(m member) bool {
			if string(m.key) == "id" {
				idm, found = m, true
			}
			return true
		})
		if err != nil || !found {
			t.Fatalf("%s: %v, found %v", tc.in, err, found)
		}
		var id json.RawMessage
		if tc.id != "" {
			id = json.RawMessage(tc.id)
		}
		if got := string(replaceMember([]byte(tc.in), idm, id)); got != tc.want {
			t.Errorf("%s with id %s = %s, want %s", tc.in, tc.id, got, tc.want)
		}
	}
}

// FuzzRequest: whatever a client sends, splitting and parsing return
// without panicking, and a value that parses is forwarded as valid JSON.
func FuzzRequest(f *testing.F) {
	for _, s := range []string{`{"execute":"x","id":1}`, `{"exec-oob":"y","arguments":{}}`, `]`, `"\u0000"`, `{"a":[{"b":"}"}]}`,
		`{'execute':'x','id':'a\'b"c'}`, `{'a':'}'}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for len(b) > 0 {
			b = b[skipSpace(b, 0):]
			if len(b) == 0 {
				return
			}
			n, stray := lexMessage(b)
			// A lexer fed b a byte at a time cuts it at the same place.
			var lx lexer
			pn, ps := 0, -1
			for k := 1; k <= len(b) && pn == 0; k++ {
				pn, ps = lx.scan(b[:k])
			}
			if pn != n || ps != stray {
				t.Fatalf("%q: whole %d, %d; a byte at a time %d, %d", b, n, stray, pn, ps)
			}
			if n == 0 {
				return
			}
			if stray >= 0 {
				b = b[n:]
				for len(b) > 0 && !resync(b[0]) {
					b = b[1:]
				}
				continue
			}
			r, e := parseRequest(b[:n], true)
			if e == nil {
				out := appendUpstream(nil, r, 1)
				if !json.Valid(out) {
					t.Fatalf("%q forwarded as invalid JSON %q", b[:n], out)
				}
				// And QEMU's lexer reads it as one message.
				if m, stray := lexMessage(out); m != len(out) || stray >= 0 {
					t.Fatalf("%q forwarded as %q, which QEMU cuts at %d (lexical error at %d)", b[:n], out, m, stray)
				}
			}
			b = b[n:]
		}
	})
}

// A TCP listener works as a UNIX one does, its port 0 resolved.
func TestListenTCP(t *testing.T) {
	srv := qmptest.NewServer(qmptest.Standard)
	defer srv.Close()
	addrs := make(chan []string, 1)
	h := startProxy(t, srv.Addr, func(c *Config) {
		c.Listen = append(c.Listen, "tcp:127.0.0.1:0")
		c.Listening = func(a []string) { addrs <- a }
	})
	got := <-addrs
	if len(got) != 2 || got[0] != "unix:"+h.path || !strings.HasPrefix(got[1], "tcp:127.0.0.1:") || strings.HasSuffix(got[1], ":0") {
		t.Fatalf("listening on %v", got)
	}
	c := qmp.NewClient()
	ctx := ctxT(t)
	if err := c.Connect(ctx, got[1]); err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	if _, err := c.Execute(ctx, "query-status", nil); err != nil {
		t.Fatal(err)
	}
	if !h.logs.has("(from 127.0.0.1:") {
		t.Errorf("the TCP client is not named by its address:\n%s", h.logs)
	}
}

// Replies the proxy makes itself while one of the client's calls is
// held by QEMU count against the client's queue: a client that sends
// garbage behind a slow command is closed, not buffered without bound.
func TestHeldRepliesBounded(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv := holdingQEMU(t, release, false) // never answers the held command
	h := startProxy(t, srv.Addr, func(c *Config) { c.QueueLen = 8 })
	r := dialRaw(t, h.path)
	r.negotiate()
	r.send(`{"execute":"hold"}` + strings.Repeat(" garbage", 20))
	line := h.logs.wait(t, "closing client", 1)
	if !strings.Contains(line, "client 1 ") {
		t.Errorf("log line %q does not name the client", line)
	}
}

// A reply longer than a client's bound, as human-monitor-command's can
// be, reaches the client that asked; the proxy and its other clients go
// on.
func TestLongReply(t *testing.T) {
	long := strings.Repeat("x", protocol.DefaultMaxMessageSize+1)
	srv := qmptest.NewServer(func(c *qmptest.Conn) {
		if c.Greet() != nil {
			return
		}
		for {
			req, err := c.ReadRequest()
			if err != nil {
				return
			}
			switch req.Command() {
			case "qmp_capabilities", "query-status":
				c.Reply(req.ID, map[string]any{})
			case "long":
				c.Reply(req.ID, long)
				// Right behind it: the proxy writes the reply's
				// first part itself, the rest is left to the writer,
				// and this must not pass it.
				c.Event("AFTER", nil)
			}
		}
	})
	defer srv.Close()
	h := startProxy(t, srv.Addr, nil)
	asker, other := dialRaw(t, h.path), dialRaw(t, h.path)
	asker.negotiate()
	other.negotiate()
	asker.send(`{"execute":"long","id":1}`)
	if got := asker.recv(); len(got) < len(long) || !strings.Contains(got, `"id":1`) {
		t.Fatalf("the long reply: %.100s... (%d bytes)", got, len(got))
	}
	if got := asker.recv(); !strings.Contains(got, `"event":"AFTER"`) {
		t.Fatalf("after the long reply: %.100s", got)
	}
	if got := other.recv(); !strings.Contains(got, `"event":"AFTER"`) { // events go to every client
		t.Fatalf("the other client: %.100s", got)
	}
	other.send(`{"execute":"query-status","id":2}`)
	if got := other.recv(); got != `{"id":2,"return":{}}` {
		t.Fatalf("the other client after the long reply: %s", got)
	}
}

// "control" is refused, as QEMU 7.2 refuses it, with the request's id.
func TestControlMemberRefused(t *testing.T) {
	r, e := parseRequest([]byte(`{"execute":"query-status","control":{"run-oob":true},"id":7}`), true)
	if e == nil || e.desc != "QMP input member 'control' is unexpected" || r == nil || string(r.id) != "7" {
		t.Errorf("parseRequest with control = %+v, %+v", r, e)
	}
}

// Left names a client that left once Trace has seen the last of it, so
// that a tracer keeping state per peer can drop it.
func TestLeftAfterLastTrace(t *testing.T) {
	srv := qmptest.NewServer(qmptest.Standard)
	defer srv.Close()
	var mu sync.Mutex
	gone := map[string]bool{}
	traced := map[string]int{}
	left := make(chan string, 1)
	h := startProxy(t, srv.Addr, func(c *Config) {
		c.Trace = func(who string, dir protocol.Direction, msg []byte) {
			mu.Lock()
			defer mu.Unlock()
			if gone[who] {
				t.Errorf("%s traced after it left: %s", who, msg)
			}
			traced[who]++
		}
		c.Left = func(who string) {
			mu.Lock()
			gone[who] = true
			mu.Unlock()
			left <- who
		}
	})
	r := dialRaw(t, h.path)
	r.negotiate()
	r.send(`{"execute":"query-status","id":1}`)
	r.recv()
	r.conn.Close()
	select {
	case who := <-left:
		mu.Lock()
		n := traced[who]
		mu.Unlock()
		if !strings.HasPrefix(who, "client ") || n != 5 { // greeting, 2 requests, 2 replies
			t.Errorf("Left(%q), which Trace saw %d times", who, n)
		}
	case <-ctxT(t).Done():
		t.Fatal("Left never called")
	}
}

// A request alone at QEMU goes without an id, which costs QEMU bytes it
// reads one at a time; one sent while another is in flight carries a
// one-digit id of the proxy's. Each client gets its reply with its own
// id, or none, whichever QEMU's reply had.
func TestUpstreamIDs(t *testing.T) {
	release := make(chan struct{})
	srv := holdingQEMU(t, release, true)
	sent, traced := sentToQEMU()
	h := startProxy(t, srv.Addr, traced)
	a, b := dialRaw(t, h.path), dialRaw(t, h.path)
	a.negotiate()
	b.negotiate()
	next := func(want string) {
		t.Helper()
		select {
		case got := <-sent:
			if got != want {
				t.Fatalf("the proxy sent QEMU %s, want %s", got, want)
			}
		case <-ctxT(t).Done():
			t.Fatalf("the proxy never sent QEMU %s", want)
		}
	}
	a.send(`{"execute":"hold","id":{"a":[1]}}`)
	next(`{"execute":"hold"}`)
	b.send(`{"execute":"echo","arguments":{"n":1},"id":"b1"}`)
	next(`{"execute":"echo","arguments":{"n":1},"id":1}`)
	b.send(`{"execute":"echo","arguments":{"n":2}}`)
	next(`{"execute":"echo","arguments":{"n":2},"id":2}`)
	close(release)
	if got := a.recv(); got != `{"id":{"a":[1]},"return":{"held":"yes"}}` {
		t.Fatalf("a got %s", got)
	}
	for _, want := range []string{`{"id":"b1","return":{"n":1}}`, `{"return":{"n":2}}`} {
		if got := b.recv(); got != want {
			t.Fatalf("b got %s, want %s", got, want)
		}
	}
	// Nothing in flight: alone again, without an id.
	a.send(`{"execute":"echo","arguments":{"n":3},"id":7}`)
	next(`{"execute":"echo","arguments":{"n":3}}`)
	if got := a.recv(); got != `{"id":7,"return":{"n":3}}` {
		t.Fatalf("a got %s", got)
	}
}

// A request goes without an id as soon as no request sent without one
// is pending at QEMU, though others with ids are: QEMU here answers the
// id-less first request while the second, with an id, waits.
func TestUpstreamIDlessBesideIDs(t *testing.T) {
	bad := make(chan string, 4)
	srv := qmptest.NewServer(func(c *qmptest.Conn) {
		if c.Greet() != nil {
			return
		}
		if neg, err := c.ReadRequest(); err != nil || c.Reply(neg.ID, map[string]any{}) != nil {
			return
		}
		first, err := c.ReadRequest()
		if err != nil {
			return
		}
		second, err := c.ReadRequest()
		if err != nil || c.Reply(first.ID, "first") != nil {
			return
		}
		third, err := c.ReadRequest()
		if err != nil {
			return
		}
		if first.ID != nil || second.ID == nil || third.ID != nil {
			bad <- fmt.Sprintf("ids %s, %s, %s; want none, one, none", first.ID, second.ID, third.ID)
		}
		if c.Reply(second.ID, "second") == nil && c.Reply(third.ID, "third") == nil {
			qmptest.Serve(c, true)
		}
	})
	t.Cleanup(srv.Close)
	sent, traced := sentToQEMU()
	h := startProxy(t, srv.Addr, traced)
	a, b := dialRaw(t, h.path), dialRaw(t, h.path)
	a.negotiate()
	b.negotiate()
	a.send(`{"execute":"one","id":"a1"}`)
	// b's request goes after a's: QEMU answers a's once it has both.
	select {
	case <-sent:
	case <-ctxT(t).Done():
		t.Fatal("the proxy never sent a's request")
	}
	b.send(`{"execute":"two","id":"b1"}`)
	if got := a.recv(); got != `{"id":"a1","return":"first"}` {
		t.Fatalf("a got %s", got)
	}
	a.send(`{"execute":"three","id":"a2"}`)
	if got := a.recv(); got != `{"id":"a2","return":"third"}` {
		t.Fatalf("a got %s", got)
	}
	if got := b.recv(); got != `{"id":"b1","return":"second"}` {
		t.Fatalf("b got %s", got)
	}
	select {
	case msg := <-bad:
		t.Error(msg)
	default:
	}
}

// A request registered while one connection to QEMU served, whose send
// was held up until QEMU had gone and the proxy had reconnected, must not
// go out on the new connection: there its reply (it would go without an
// id) would be taken by another client's request alone at QEMU. The
// request is held just before its send (testHookForward) while QEMU goes
// away; the reconnect waits for it at the barrier (testHookBarrier).
func TestNoSendOnTheNextConnection(t *testing.T) {
	var conns atomic.Int32
	drop := make(chan struct{})
	srv := qmptest.NewServer(func(c *qmptest.Conn) {
		n := conns.Add(1)
		if c.Greet() != nil {
			return
		}
		if req, err := c.ReadRequest(); err != nil || c.Reply(req.ID, map[string]any{}) != nil {
			return
		}
		if n == 1 {
			<-drop
			c.Close()
			return
		}
		// A stale request, should it come, is answered just before the
		// next one, as QEMU would when it is still running it.
		var stale *qmptest.Request
		c.Answer(func(req *qmptest.Request) bool {
			if strings.Contains(string(req.Arguments), `"A"`) {
				stale = req
				return true
			}
			if stale != nil {
				c.Reply(stale.ID, stale.Arguments)
			}
			c.Reply(req.ID, req.Arguments)
			return true
		})
	})
	t.Cleanup(srv.Close)
	// The hooks are set before the proxy's goroutines start, and armed
	// once it serves: the first connection's barrier is not the one.
	held, release := make(chan struct{}), make(chan struct{})
	var armed atomic.Bool
	testHookForward = func() {
		if armed.CompareAndSwap(true, false) {
			close(held)
			<-release
		}
	}
	atBarrier := make(chan struct{}, 4)
	testHookBarrier = func() {
		if armed.Load() {
			return
		}
		select {
		case <-held:
			atBarrier <- struct{}{}
		default:
		}
	}
	t.Cleanup(func() { testHookForward, testHookBarrier = nil, nil })
	h := startProxy(t, srv.Addr, func(c *Config) { c.Reconnect = true })
	armed.Store(true)
	a := dialRaw(t, h.path)
	a.negotiate()
	a.send(`{"execute":"echo","arguments":{"who":"A"},"id":"a"}`)
	<-held
	close(drop) // QEMU goes away; the proxy reconnects
	h.waitServing(false)
	served := false
	select {
	case <-atBarrier: // the reconnect waits for the held request
	case served = <-h.serving:
	case <-ctxT(t).Done():
		t.Fatal("the proxy neither reached the barrier nor served again")
	}
	close(release)
	if !served {
		h.waitServing(true)
	}
	// A's request never reached QEMU: A got an error (or nothing, its
	// connection closed with QEMU's); B, alone at QEMU, gets its own reply.
	b := dialRaw(t, h.path)
	b.negotiate()
	b.send(`{"execute":"echo","arguments":{"who":"B"},"id":"b"}`)
	if got := b.recv(); got != `{"id":"b","return":{"who":"B"}}` {
		t.Fatalf("B got %s", got)
	}
}

// sentToQEMU returns a channel of what the proxy sends QEMU after
// negotiating, and the Config change that feeds it.
func sentToQEMU() (<-chan string, func(*Config)) {
	sent := make(chan string, 16)
	return sent, func(c *Config) {
		c.Trace = func(who string, dir protocol.Direction, msg []byte) {
			if who == "qemu" && dir == protocol.Sent && !strings.Contains(string(msg), "qmp_capabilities") {
				sent <- string(msg)
			}
		}
	}
}
