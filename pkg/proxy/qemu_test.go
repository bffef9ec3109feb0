package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/protocol"
	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	t.Cleanup(cancel)
	return ctx
}

// Two clients and a third that only listens, through one proxy at once:
// each gets its own replies, and every one sees every event.
func TestClientsShareQEMU(t *testing.T) {
	h := startProxy(t, qmptest.StartQEMU(t), nil)
	ctx := ctxT(t)
	a, b, watcher := h.client(), h.client(), h.client()
	la, lb, lw := a.Listen("STOP", "RESUME"), b.Listen("STOP", "RESUME"), watcher.Listen("STOP", "RESUME")
	defer la.Close()
	defer lb.Close()
	defer lw.Close()

	if _, err := a.Execute(ctx, "stop", nil); err != nil {
		t.Fatalf("a: stop: %v", err)
	}
	st, err := b.Execute(ctx, "query-status", nil)
	if err != nil || !strings.Contains(string(st), `"paused"`) {
		t.Fatalf("b: query-status after a's stop = %s, %v", st, err)
	}
	if _, err := b.Execute(ctx, "cont", nil); err != nil {
		t.Fatalf("b: cont: %v", err)
	}
	st, err = a.Execute(ctx, "query-status", nil)
	if err != nil || !strings.Contains(string(st), `"running"`) {
		t.Fatalf("a: query-status after b's cont = %s, %v", st, err)
	}
	for name, l := range map[string]*qmp.Listener{"a": la, "b": lb, "watcher": lw} {
		for _, want := range []string{"STOP", "RESUME"} {
			select {
			case ev := <-l.Events():
				if ev.Name != want {
					t.Errorf("%s: event %s, want %s", name, ev.Name, want)
				}
			case <-ctx.Done():
				t.Fatalf("%s: no %s event", name, want)
			}
		}
	}
	// Many calls from both at once: each reply to its caller.
	errs := make(chan error, 2)
	for _, c := range []*qmp.Client{a, b} {
		go func() {
			for i := range 50 {
				arg := map[string]any{"path": "/machine", "property": "type"}
				if _, err := c.Execute(ctx, "qom-get", arg); err != nil {
					errs <- err
					return
				}
				_ = i
			}
			errs <- nil
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// A client that is not qmpsh, socat sending raw JSON, gets back each id
// verbatim (string, number, object, none) and a malformed line does not
// end its session.
func TestRawClientIDs(t *testing.T) {
	// make test installs socat with QEMU; QMPSH_REQUIRE_QEMU makes its
	// absence a failure.
	socat := qmptest.RequireQEMU(t, "socat")
	h := startProxy(t, qmptest.StartQEMU(t), nil)
	in := strings.Join([]string{
		`{"execute":"qmp_capabilities","id":"neg"}`,
		`{"execute":"query-status","id":"s"}`,
		`{"execute":"query-status","id":42}`,
		`{"execute":"query-status","id":{"a":[1,"x"]}}`,
		`{"execute":"query-status"}`,
		`this is not json`,
		`{"execute":"query-name","id":-1.5}{"execute":"query-name","id":null}`,
	}, "\n") + "\n"
	cmd := exec.Command(socat, "-t", "30", "-", "unix-connect:"+h.path)
	cmd.Stdin = strings.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("socat: %v\n%s", err, out)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var got []string
	for {
		var m json.RawMessage
		if err := dec.Decode(&m); err != nil {
			break
		}
		got = append(got, string(compact(m)))
	}
	want := []string{
		"", // the greeting
		`{"id":"neg","return":{}}`,
		`{"id":"s","return":{"running":true,"singlestep":false,"status":"running"}}`,
		`{"id":42,"return":{"running":true,"singlestep":false,"status":"running"}}`,
		`{"id":{"a":[1,"x"]},"return":{"running":true,"singlestep":false,"status":"running"}}`,
		`{"return":{"running":true,"singlestep":false,"status":"running"}}`,
		`{"error":{"class":"GenericError","desc":"JSON parse error, invalid keyword 'this'"}}`,
		`{"error":{"class":"GenericError","desc":"JSON parse error, invalid keyword 'is'"}}`,
		`{"error":{"class":"GenericError","desc":"JSON parse error, invalid keyword 'not'"}}`,
		`{"error":{"class":"GenericError","desc":"JSON parse error, invalid keyword 'json'"}}`,
		`{"id":-1.5,"return":{}}`,
		`{"id":null,"return":{}}`,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	if !strings.HasPrefix(got[0], `{"QMP":`) {
		t.Errorf("greeting = %s", got[0])
	}
	for i := 1; i < len(want); i++ {
		if got[i] != want[i] {
			t.Errorf("message %d = %s, want %s", i, got[i], want[i])
		}
	}
}

// What QEMU does before and after negotiation, the proxy does too.
func TestNegotiationLikeQEMU(t *testing.T) {
	h := startProxy(t, qmptest.StartQEMU(t), nil)
	r := dialRaw(t, h.path)
	g := r.recv()
	var greeting struct {
		QMP struct {
			Version      json.RawMessage
			Capabilities []string
		}
	}
	if err := json.Unmarshal([]byte(g), &greeting); err != nil || greeting.QMP.Version == nil {
		t.Fatalf("greeting %s: %v", g, err)
	}
	if len(greeting.QMP.Capabilities) != 1 || greeting.QMP.Capabilities[0] != "oob" {
		t.Errorf("greeting offers %v, want QEMU's [oob]", greeting.QMP.Capabilities)
	}
	steps := []struct{ send, want string }{
		{`{"execute":"query-status","id":1}`, `{"error":{"class":"CommandNotFound","desc":"Expecting capabilities negotiation with 'qmp_capabilities'"},"id":1}`},
		{`{"exec-oob":"migrate-recover","arguments":{"uri":"x"},"id":2}`, `{"error":{"class":"GenericError","desc":"QMP input member 'exec-oob' is unexpected"},"id":2}`},
		{`{"execute":"qmp_capabilities","arguments":{"enable":["oob"]},"id":3}`, `{"id":3,"return":{}}`},
		{`{"execute":"qmp_capabilities","id":4}`, `{"error":{"class":"CommandNotFound","desc":"Capabilities negotiation is already complete, command ignored"},"id":4}`},
		// After negotiation QEMU checks the arguments first.
		{`{"execute":"qmp_capabilities","arguments":{"enable":"bogus"},"id":41}`, `{"error":{"class":"GenericError","desc":"Invalid parameter type for 'enable', expected: array"},"id":41}`},
		{`{"execute":"qmp_capabilities","arguments":{"enable":["xx"]},"id":42}`, `{"error":{"class":"GenericError","desc":"Parameter 'null' does not accept value 'xx'"},"id":42}`},
		{`{"execute":"qmp_capabilities","arguments":{"x":1},"id":43}`, `{"error":{"class":"GenericError","desc":"Parameter 'x' is unexpected"},"id":43}`},
		{`{"exec-oob":"query-status","id":5}`, `{"error":{"class":"GenericError","desc":"The command query-status does not support OOB"},"id":5}`},
		{`{"execute":"no-such-thing","id":6}`, `{"error":{"class":"CommandNotFound","desc":"The command no-such-thing has not been found"},"id":6}`},
		{`{"execute":"query-status","foo":1,"id":7}`, `{"error":{"class":"GenericError","desc":"QMP input member 'foo' is unexpected"},"id":7}`},
		{`[1]`, `{"error":{"class":"GenericError","desc":"QMP input must be a JSON object"}}`},
		{`}`, `{"error":{"class":"GenericError","desc":"JSON parse error, expecting value"}}`},
		// QEMU 7.2's words for values that are not JSON.
		{`{"execute":}`, `{"error":{"class":"GenericError","desc":"JSON parse error, expecting value"}}`},
		{`{"execute" "x"}`, `{"error":{"class":"GenericError","desc":"JSON parse error, missing : in object pair"}}`},
		{`{"execute":"query-status",}`, `{"error":{"class":"GenericError","desc":"JSON parse error, expecting value"}}`},
		{`{"a":1 "b":2}`, `{"error":{"class":"GenericError","desc":"JSON parse error, expected separator in dict"}}`},
		{`{"execute":tru}`, `{"error":{"class":"GenericError","desc":"JSON parse error, invalid keyword 'tru'"}}`},
		{`[}`, `{"error":{"class":"GenericError","desc":"JSON parse error, expecting value"}}`},
		{`[1 2]`, `{"error":{"class":"GenericError","desc":"JSON parse error, expected separator in list"}}`},
		{`{1:2}`, `{"error":{"class":"GenericError","desc":"JSON parse error, key is not a string in object"}}`},
		{`{"execute":"query-name","id":"x\q"}`, `{"error":{"class":"GenericError","desc":"JSON parse error, invalid escape sequence in string"}}`},
		// QEMU's parser takes strings in single quotes, and \' in a
		// string; it answers with the strings in double quotes.
		{`{'execute':'query-name','id':'"q"'}`, `{"id":"\"q\"","return":{}}`},
		{`{"execute":'query-name',"id":['a',"b's",'c\'d']}`, `{"id":["a","b's","c'd"],"return":{}}`},
		{`{"execute":"query-name","id":"\'"}`, `{"id":"'","return":{}}`},
		{`{'a':'}'}`, `{"error":{"class":"GenericError","desc":"QMP input member 'a' is unexpected"}}`},
		{`'str'`, `{"error":{"class":"GenericError","desc":"QMP input must be a JSON object"}}`},
		{`{'execute':'query-name','id':'x\q'}`, `{"error":{"class":"GenericError","desc":"JSON parse error, invalid escape sequence in string"}}`},
		{`{'execute':'query-name','id':'it''s'}`, `{"error":{"class":"GenericError","desc":"JSON parse error, expected separator in dict"}}`},
	}
	for _, s := range steps {
		r.send(s.send)
		if got := r.recv(); got != s.want {
			t.Errorf("%s -> %s, want %s", s.send, got, s.want)
		}
	}
}

// A second qmp_capabilities is a command like any other: QEMU answers it
// (TestNegotiationLikeQEMU) unless the policy refuses it, and then it
// never reaches QEMU.
func TestPolicyCoversSecondNegotiation(t *testing.T) {
	h := startProxy(t, qmptest.StartQEMU(t), func(c *Config) { c.Policy.Deny = []string{"*"} })
	r := dialRaw(t, h.path)
	r.negotiate()
	r.send(`{"execute":"qmp_capabilities","arguments":{"x":1},"id":1}`)
	want := `{"error":{"class":"GenericError","desc":"command 'qmp_capabilities' is refused by the proxy: it matches --deny '*'"},"id":1}`
	if got := r.recv(); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// --read-only lets query-status through and keeps quit and
// human-monitor-command from QEMU.
func TestReadOnly(t *testing.T) {
	h := startProxy(t, qmptest.StartQEMU(t), func(c *Config) { c.Policy.ReadOnly = true })
	ctx := ctxT(t)
	c := h.client()
	if _, err := c.Execute(ctx, "query-status", nil); err != nil {
		t.Fatalf("query-status: %v", err)
	}
	for _, cmd := range []struct {
		name string
		args any
	}{{"quit", nil}, {"human-monitor-command", map[string]string{"command-line": "quit"}}, {"stop", nil}} {
		_, err := c.Execute(ctx, cmd.name, cmd.args)
		var ee *qmp.ExecuteError
		if !errors.As(err, &ee) || ee.Class != "GenericError" || !strings.Contains(ee.Desc, "'"+cmd.name+"'") || !strings.Contains(ee.Desc, "--read-only") {
			t.Errorf("%s: %v, want a GenericError naming the command and --read-only", cmd.name, err)
		}
	}
	st, err := c.Execute(ctx, "query-status", nil)
	if err != nil || !strings.Contains(string(st), `"running"`) {
		t.Fatalf("QEMU after the refusals: %s, %v", st, err)
	}
}

// A request that QEMU's parser would split, running a command hidden in
// it, never reaches QEMU: an invalid UTF-8 byte (it resets QEMU's
// lexer), nesting or a token count beyond QEMU's limits (its parser
// starts over mid-message). Nor does one QEMU would answer without its
// id (a lone surrogate, a key twice), which would leave the client
// waiting. Each gets an error with its id.
func TestNothingSmuggledPastPolicy(t *testing.T) {
	h := startProxy(t, qmptest.StartQEMU(t), func(c *Config) { c.Policy.ReadOnly = true })
	r := dialRaw(t, h.path)
	r.negotiate()
	stop := `{'execute':'stop'}`
	deep := strings.Repeat("[", maxNesting+1) + strings.Repeat("]", maxNesting+1)
	many := strings.TrimSuffix(strings.Repeat("0,", maxTokens/2+1), ",")
	for _, c := range []struct{ args, want string }{
		{`{"a":"` + "\xc3(" + stop + `"}`, "invalid UTF-8"},
		{`{"a":0e5}`, "expected separator in dict"},
		{`{"a":[-0e0],"b":{"execute":"stop"}}`, "expected separator in list"},
		{`{"a":` + deep + `,"b":{"execute":"stop"}}`, "nesting depth limit"},
		{`{"a":[` + many + `],"b":{"execute":"stop"}}`, "token count limit"},
		{`{"a":"\udc00"}`, `is not a valid Unicode character`},
		{`{"a":1,"\u0061":2}`, "duplicate key"},
	} {
		r.send(`{"execute":"query-status","arguments":` + c.args + `,"id":5}`)
		got := r.recv()
		if !strings.Contains(got, `"id":5`) || !strings.Contains(got, c.want) {
			t.Errorf("reply %.200s, want an error with id 5 saying %q", got, c.want)
		}
	}
	r.send(`{"execute":"query-status","id":6}`)
	if got := r.recv(); !strings.Contains(got, `"id":6`) || !strings.Contains(got, `"status":"running"`) {
		t.Fatalf("query-status after the refusals: %s", got)
	}
	// A control character or a byte 0xFF ends a string, and the
	// message, in QEMU's lexer as in the proxy's, which then starts over:
	// what follows is a message of its own, and the policy judges it.
	// (The rest of the line is garbage; the newline ends the string it
	// leaves open.)
	for _, b := range []string{"\n", "\xff"} {
		r.send(`{"execute":"query-status","arguments":{"a":"` + b + stop + `"},"id":7}` + "\n" + `{"execute":"query-status","id":8}`)
		refused := false
		for {
			got := r.recv()
			if strings.Contains(got, `"id":8`) {
				if !strings.Contains(got, `"status":"running"`) {
					t.Errorf("query-status after %q: %s", b, got)
				}
				break
			}
			refused = refused || strings.Contains(got, "command 'stop' is refused by the proxy")
		}
		if !refused {
			t.Errorf("the stop after %q was not refused", b)
		}
	}
}

func TestBeyondQEMU(t *testing.T) {
	for _, c := range []struct {
		v    string
		want string
	}{
		{`{"a":"ok","b":[1,2.5e3,true,null,{"c":"\"}["}]}`, ""},
		{strings.Repeat("[", maxNesting) + strings.Repeat("]", maxNesting), ""},
		{strings.Repeat("{\"a\":", maxNesting+1) + "1" + strings.Repeat("}", maxNesting+1), "nesting"},
		// brackets inside strings are no nesting
		{`["` + strings.Repeat("[", 2*maxNesting) + `"]`, ""},
		// At most maxTokens with the four of the proxy's ,"id":N.
		{"[" + strings.TrimSuffix(strings.Repeat("12345,", maxTokens/2-3), ",") + "]", ""},
		{"[" + strings.TrimSuffix(strings.Repeat("12345,", maxTokens/2-2), ",") + "]", "token count"},
		{"[" + strings.TrimSuffix(strings.Repeat("1,", maxTokens/2+1), ",") + "]", "token count"},
		{"[\"\xc3\x28\"]", "UTF-8"},
		{`["\ud83d\ude00 \u0000 \u00e9 é"]`, ""},
		{`["\ud83d"]`, `\ud83d is not a valid Unicode character`},
		{`["\ude00\ud83d"]`, `\ude00 is not`},
		{`["\uFFFE"]`, "not a valid Unicode character"},
		{"[\"\uFDD0\"]", "invalid UTF-8"}, // raw noncharacter
		{"[\"\U0010FFFF\"]", "invalid UTF-8"},
		{`{"a":1,"b":{"a":1},"c":[{"a":1},{"a":2}]}`, ""},
		{`{"a":1,"b":2,"a":3}`, "duplicate key"},
		{`{"x":[{"a":1,"a":2}]}`, "duplicate key"},
		{`{"a\"b":1,"a\u0022b":2}`, "duplicate key"},
	} {
		got := beyondQEMU([]byte(c.v))
		if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("beyondQEMU(%.40q) = %q, want %q", c.v, got, c.want)
		}
	}
}

// getfd's descriptor travels with it to QEMU.
func TestSendFD(t *testing.T) {
	h := startProxy(t, qmptest.StartQEMU(t), nil)
	ctx := ctxT(t)
	c := h.client()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if _, err := c.ExecuteWithFiles(ctx, "getfd", map[string]string{"fdname": "pipe"}, w); err != nil {
		t.Fatalf("getfd with a descriptor: %v", err)
	}
	// QEMU has it: closefd finds it by name, and only once.
	if _, err := c.Execute(ctx, "closefd", map[string]string{"fdname": "pipe"}); err != nil {
		t.Fatalf("closefd: %v", err)
	}
	if _, err := c.Execute(ctx, "getfd", map[string]string{"fdname": "none"}); err == nil {
		t.Fatal("getfd without a descriptor succeeded")
	}
	// A descriptor QEMU did not take (add-fd refused for its arguments
	// before it looked) stays on the proxy's connection to QEMU: another
	// client's add-fd without one must not get it.
	if _, err := c.ExecuteWithFiles(ctx, "add-fd", map[string]any{"opaque": 5}, w); err == nil {
		t.Fatal("add-fd with a number for opaque succeeded")
	}
	other := h.client()
	ret, err := other.Execute(ctx, "add-fd", nil)
	if err == nil || !strings.Contains(err.Error(), "No file descriptor supplied via SCM_RIGHTS") {
		t.Fatalf("another client's add-fd without a descriptor = %s, %v; want QEMU's refusal", ret, err)
	}
}

// QEMU going away closes every client and ends the proxy.
func TestQEMUGoesAway(t *testing.T) {
	q := qmptest.StartQEMUAt(t, filepath.Join(shortDir(t), "q.sock"))
	h := startProxy(t, q.Path, nil)
	r := dialRaw(t, h.path)
	r.negotiate()
	q.Kill()
	err := h.wait()
	var ue *UpstreamError
	if !errors.As(err, &ue) || !ue.Lost {
		t.Fatalf("Run = %v, want QEMU lost", err)
	}
	if _, err := r.dec.Token(); err == nil {
		t.Error("the client's connection is still open")
	}
	if _, err := os.Lstat(h.path); !os.IsNotExist(err) {
		t.Errorf("listening socket left behind: %v", err)
	}
}

// With Reconnect, a QEMU restarted on the same socket is served again.
func TestReconnect(t *testing.T) {
	path := filepath.Join(shortDir(t), "q.sock")
	q := qmptest.StartQEMUAt(t, path)
	h := startProxy(t, q.Path, func(c *Config) { c.Reconnect = true })
	ctx := ctxT(t)
	c := h.client()
	if _, err := c.Execute(ctx, "stop", nil); err != nil {
		t.Fatal(err)
	}
	q.Kill()
	h.waitServing(false)
	if !c.WaitForStateChange(ctx, protocol.Running) {
		t.Fatal("the client was not disconnected")
	}
	qmptest.StartQEMUAt(t, path)
	c2 := h.client()
	st, err := c2.Execute(ctx, "query-status", nil)
	if err != nil || !strings.Contains(string(st), `"running"`) {
		t.Fatalf("the new QEMU through the proxy: %s, %v", st, err)
	}
	if err := h.stop(); err != nil {
		t.Fatalf("Run = %v after cancel", err)
	}
}

// 100 clients connecting, running a command and leaving leave no
// descriptor behind (and, TestMain checks, no goroutine).
func TestClientsLeaveNothing(t *testing.T) {
	h := startProxy(t, qmptest.StartQEMU(t), nil)
	ctx := ctxT(t)
	warm := h.client()
	if _, err := warm.Execute(ctx, "query-status", nil); err != nil {
		t.Fatal(err)
	}
	warm.Disconnect()
	h.logs.wait(t, "client left", 1)
	// A client that stays throughout notices nothing of the others.
	other := h.client()
	if _, err := other.Execute(ctx, "query-status", nil); err != nil {
		t.Fatal(err)
	}
	before := openFDs(t)
	for i := range 100 {
		if i%2 == 0 {
			c := qmp.NewClient()
			if err := c.Connect(ctx, h.path); err != nil {
				t.Fatalf("client %d: %v", i, err)
			}
			if _, err := c.Execute(ctx, "query-status", nil); err != nil {
				t.Fatalf("client %d: %v", i, err)
			}
			c.Disconnect()
			continue
		}
		// Leave with the command in flight: its reply is dropped.
		r := dialRaw(t, h.path)
		r.negotiate()
		r.send(`{"execute":"query-status","id":1}`)
		r.conn.Close()
	}
	h.logs.wait(t, "client left", 101)
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors open after 100 clients, %d before", after, before)
	}
	if _, err := other.Execute(ctx, "query-status", nil); err != nil {
		t.Fatalf("the client that stayed: %v", err)
	}
	other.Disconnect()
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// Whatever a client sends, well formed or not, the proxy answers as QEMU
// does: the same replies, as many, and the session goes on after each.
// Each input goes straight to one QEMU and through the proxy to another,
// and the replies are compared as JSON values (an id comes back as the
// client wrote it, which QEMU may respell: 1.5e3 as 1500).
func TestLikeQEMU(t *testing.T) {
	direct := qmptest.StartQEMU(t)
	h := startProxy(t, qmptest.StartQEMU(t), nil)
	for _, in := range []string{
		// Single quotes, and \' in either kind of string.
		`{'execute':'query-name','id':'a\'b"c'}`,
		`{"execute":'query-name',"id":['a',"b's",'c\'d']}`,
		`{"execute":"query-name","id":"\'"}`,
		`{'a':'}'}`, `'str'`, `{'execute' 'query-name'}`,
		`{'execute':'query-name','id':'it''s'}`,
		// Lexical errors: QEMU's lexer skips what follows them, quotes
		// included, up to a brace, a bracket, a colon, a comma or a
		// control character.
		`@'abc}{"execute":"query-name","id":3}`,
		`{"a": @'}'}{"execute":"query-name","id":4}`,
		"{'execute':'query-status\n{'execute':'query-name','id':2}\n",
		"{\"execute\":\"query-status\n{\"execute\":\"query-name\",\"id\":2}\n",
		"{'execute':'query-name','id':'x\\\n'}", "'abc\tdef'", "{\"a\":\"x\nfoo\"}",
		"{\"execute\":\"query-status\",\"arguments\":{\"a\":\"\n{'execute':'query-name','id':9}\"},\"id\":7}\n",
		"\x01", "\xff", "{\"execute\":\"query-name\",\"id\":\"\x00\"}",
		"{\"execute\":\"query-name\",\"id\":\"a\xfeb\"}", "{\"execute\":\"query-name\",\"id\":'\xff}{\"execute\":\"query-name\",\"id\":5}",
		`-'x'`, `1.'x'`, `foo'bar'`, `fooX`, `TRUE`, `12abc`, `0e5`, `-01`, `1e+`,
		`{"execute":"query-name","id":2e}`, `{"execute":"query-name","id":-}`,
		// Escapes.
		`{'execute':'query-name','id':'x\q'}`, `{'execute':'query-name','id':'\u12'}`,
		`{'execute':'query-name','id':'\u00zz'}`, `{"execute":"query-name","id":"\u00e9"}`, `'\`,
		// Structure.
		`{]`, `[}`, `]`, `,`, `{"a":1}}`, `{"id":1,"execute":"query-name"}}`,
		`{"execute":"query-name","id":[1,{"a":'b'}]}`,
		`{"execute":"query-name","id":1.5e3}`,
	} {
		want := exchange(t, direct, in)
		if got := exchange(t, h.path, in); !slices.Equal(got, want) {
			t.Errorf("%q:\nproxy %q\nQEMU  %q", in, got, want)
		}
	}
}

// exchange negotiates at path, sends in and then a request with the id
// "end", and returns the messages that came before that one's reply.
func exchange(t *testing.T, path, in string) []string {
	t.Helper()
	r := dialRaw(t, path)
	defer r.conn.Close() // QEMU serves the next connection once this one is gone
	r.negotiate()
	r.send(in + "\n" + `{"execute":"query-name","id":"end"}`)
	var got []string
	for {
		m := r.recv()
		if strings.Contains(m, `"id":"end"`) {
			return got
		}
		got = append(got, m)
	}
}
