package cmd

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/ga/gatest"
	"github.com/qmpsh/qmpsh/pkg/protocol"
	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// The redactor hides what is secret in requests, and the replies that
// give a secret back, and leaves everything else as it came.
func TestRedactor(t *testing.T) {
	var r redactor
	for _, tc := range []struct{ who, msg, want string }{
		{"", `{"execute":"query-status"}`, ``},
		{"", `{"return": {"status": "running"}}`, ``},
		{"", `{"execute":"object-add","arguments":{"qom-type":"secret","id":"s0","data":"hunter2"}}`,
			`{"arguments":{"data":"<redacted>","id":"s0","qom-type":"secret"},"execute":"object-add"}`},
		{"", `{"execute":"object-add","arguments":{"qom-type":"secret","id":"s0","d\u0061ta":"hunter2"}}`,
			`{"arguments":{"data":"<redacted>","id":"s0","qom-type":"secret"},"execute":"object-add"}`},
		{"", `{"execute":"object-add","arguments":{"qom-type":"secret","id":"s0","props":{"data":"hunter2"}}}`,
			`{"arguments":{"id":"s0","props":{"data":"<redacted>"},"qom-type":"secret"},"execute":"object-add"}`},
		// Credentials inside a disk's location, in a request and in
		// a reply that gives the location back.
		{"", `{"execute":"blockdev-add","arguments":{"driver":"https","node-name":"h0","url":"https://alice:hunter2@example.com/d.img"}}`,
			`{"arguments":{"driver":"https","node-name":"h0","url":"https://alice:<redacted>@example.com/d.img"},"execute":"blockdev-add"}`},
		{"", `{"execute":"x","arguments":{"files":["rbd:p/i:id=admin:key=hunter2:conf=/c","/plain"]}}`,
			`{"arguments":{"files":["rbd:p/i:id=admin:key=<redacted>:conf=/c","/plain"]},"execute":"x"}`},
		{"", `{"return": [{"device": "", "inserted": {"file": "json:{\"driver\": \"https\", \"url\": \"https://alice:hunter2@example.com/d.img\"}"}}]}`,
			`{"return": [{"device": "", "inserted": {"file": "json:{\"driver\": \"https\", \"url\": \"https://alice:<redacted>@example.com/d.img\"}"}}]}`},
		{"", `{"return": [{"file": "https://alice@example.com/d.img"}]}`, ``},
		{"", `{"return": [{"file": "http://alice:p\"w\u00E9@127.0.0.1:18080/d.img"}]}`,
			`{"return": [{"file": "http://alice:<redacted>@127.0.0.1:18080/d.img"}]}`},
		{"", `{"execute":"human-monitor-command","arguments":{"command-line":"drive_add 0 if=none,file=json:{\"driver\":\"http\",,\"url\":\"http:\\/\\/alice:pw8@h/d\"}"}}`,
			`{"arguments":{"command-line":"drive_add <redacted>"},"execute":"human-monitor-command"}`},
		{"", `{"return": "OK\r\n"}`, `{"return":"<redacted>"}`},
		// A secret's name is not a secret.
		{"", `{"execute":"blockdev-add","arguments":{"driver":"luks","node-name":"l0","key-secret":"sec0"}}`, ``},
		{"", `{"execute":"set_password","arguments":{"protocol":"vnc","password":"hunter2"},"id":7}`,
			`{"arguments":{"password":"<redacted>","protocol":"vnc"},"execute":"set_password","id":7}`},
		{"", `{"exec-oob":"x","arguments":{"a":[{"tls-password":"hunter2"}]}}`,
			`{"arguments":{"a":[{"tls-password":"<redacted>"}]},"exec-oob":"x"}`},
		{"", `{"execute":"guest-set-user-password","arguments":{"username":"u","password":"aHVudGVyMg==","crypted":false}}`,
			`{"arguments":{"crypted":false,"password":"<redacted>","username":"u"},"execute":"guest-set-user-password"}`},
		{"", `{"execute":"human-monitor-command","arguments":{"command-line":"info status"}}`, ``},
		{"", `{"execute":"human-monitor-command","arguments":{"command-line":"object_add secret,id=s1,data=hunter2"},"id":"h"}`,
			`{"arguments":{"command-line":"object_add <redacted>"},"execute":"human-monitor-command","id":"h"}`},
		{"", `{"return": "hunter2\r\n", "id": "h"}`, `{"id":"h","return":"<redacted>"}`},
		{"", `{"execute":"qom-set","arguments":{"path":"/objects/s0","property":"data","value":"hunter2"}}`,
			`{"arguments":{"path":"/objects/s0","property":"data","value":"<redacted>"},"execute":"qom-set"}`},
		{"", `{"return": {}}`, ``},
		// qom-get of a secret's data: QEMU gives it back. Events and
		// other replies between pass; the reply with the id is hidden.
		{"", `{"execute":"qom-get","arguments":{"path":"/objects/s0","property":"data"},"id":{"a":1}}`, ``},
		{"", `{"event": "STOP", "data": {}, "timestamp": {"seconds": 1, "microseconds": 2}}`, ``},
		{"other", `{"return": "hunter2", "id": {"a":1}}`, ``},
		{"", `{"return": "hunter2", "id": {"a": 1}}`, `{"id":{"a":1},"return":"<redacted>"}`},
		// Its pair came: another reply with the id passes, unless it
		// carries the value just hidden (see TestRedactorReusedIDMixed).
		{"", `{"return": "hunter3", "id": {"a": 1}}`, ``},
		{"", `{"execute":"qom-get","arguments":{"path":"/machine","property":"type"}}`, ``},
		{"", `{"return": "none-machine"}`, ``},
		// HMP: qom-get gives a secret back, qom-set sets one, object_add
		// takes JSON (escapes and all), and words are split on any white
		// space.
		{"", `{"execute":"human-monitor-command","arguments":{"command-line":"qom-get /objects/s0 data"},"id":"g"}`, ``},
		{"", `{"return": "\"hunter2\"\r\n", "id": "g"}`, `{"id":"g","return":"<redacted>"}`},
		{"", `{"execute":"human-monitor-command","arguments":{"command-line":"qom-get\t/objects/v0\ttls-password"},"id":"g"}`,
			`{"arguments":{"command-line":"qom-get <redacted>"},"execute":"human-monitor-command","id":"g"}`},
		{"", `{"return": "\"hunter2\"\r\n", "id": "g"}`, `{"id":"g","return":"<redacted>"}`},
		{"", `{"execute":"human-monitor-command","arguments":{"command-line":"qom-get /machine type"},"id":"g"}`, ``},
		{"", `{"return": "\"none-machine\"\r\n", "id": "g"}`, ``},
		{"", `{"execute":"human-monitor-command","arguments":{"command-line":"qom-set /objects/s0 data hunter30"}}`,
			`{"arguments":{"command-line":"qom-set <redacted>"},"execute":"human-monitor-command"}`},
		{"", `{"return": ""}`, `{"return":"<redacted>"}`},
		{"", `{"execute":"human-monitor-command","arguments":{"command-line":"object_add {\"qom-type\":\"secret\",\"id\":\"s20\",\"d\\u0061ta\":\"hunter20\"}"}}`,
			`{"arguments":{"command-line":"object_add <redacted>"},"execute":"human-monitor-command"}`},
		{"", `{"return": ""}`, `{"return":"<redacted>"}`},
		{"", `{"execute":"human-monitor-command","arguments":{"command-line":"object_add\tsecret,id=s1,data=hunter3"}}`,
			`{"arguments":{"command-line":"object_add <redacted>"},"execute":"human-monitor-command"}`},
		{"", `{"return": ""}`, `{"return":"<redacted>"}`},
		{"", `{"execute":"human-monitor-command","arguments":{"command-line":"set_password\tvnc\thunter4"}}`,
			`{"arguments":{"command-line":"set_password <redacted>"},"execute":"human-monitor-command"}`},
		{"", `{"return": ""}`, `{"return":"<redacted>"}`},
		// qom-list-get (QEMU >= 10.1) gives every property's value.
		{"", `{"execute":"qom-list-get","arguments":{"paths":["/objects/s0"]},"id":9}`, ``},
		{"", `{"return": [{"properties": [{"name": "data", "type": "string", "value": "hunter2"}]}], "id": 9}`, `{"id":9,"return":"<redacted>"}`},
		// Keys ending in _password too (QEMU's own are -password).
		{"", `{"execute":"x","arguments":{"tls_password":"hunter2"}}`, `{"arguments":{"tls_password":"<redacted>"},"execute":"x"}`},
		// Not JSON: hidden whole if its words carry a secret.
		{"", `{'execute':'object-add','arguments':{'qom-type':'secret','id':'s0','data':'hunter2'}}`, `"<redacted> (not JSON)"`},
		{"", `{'execute':'query-status'}`, ``},
		// A secret cut short by a lexical error (a tab): the pieces the
		// parser reads after it are hidden up to the peer's next
		// request, and what its errors quote of the peer's input from
		// then on, whichever message they answer.
		{"p", `{"execute":"qom-get","arguments":{"path":"/machine","property":"type"},"id":1}`, ``},
		{"p", "{\"execute\":\"object-add\",\"arguments\":{\"qom-type\":\"secret\",\"id\":\"s3\",\"data\":\"TOP\t", `"<redacted> (not JSON)"`},
		{"p", `:`, `"<redacted> (not JSON)"`},
		{"p", `12345`, `"<redacted> (not JSON)"`},
		{"p", `{"return": "none-machine", "id": 1}`, ``},
		{"p", `{"error": {"class": "GenericError", "desc": "JSON parse error, stray '\"TOP\t'"}}`,
			`{"error":{"class":"GenericError","desc":"JSON parse error, stray '<redacted>'"}}`},
		{"p", `{"error": {"class": "GenericError", "desc": "JSON parse error, invalid keyword 'sec'"}}`,
			`{"error":{"class":"GenericError","desc":"JSON parse error, invalid keyword '<redacted>'"}}`},
		{"p", `{"execute":"query-status"}`, ``},
		{"p", `12345`, ``},
		{"p", `{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}`, ``},
	} {
		got := string(r.message(tc.who, []byte(tc.msg)))
		want := tc.want
		if want == "" {
			want = tc.msg
		}
		if got != want {
			t.Errorf("%s %s\n got %s\nwant %s", tc.who, tc.msg, got, want)
		}
	}
	if len(r.pending) != 0 {
		t.Errorf("pending after every reply came: %v", r.pending)
	}
}

// The replies a redactor awaits go with their session: a new greeting
// from the same peer (connect --reconnect starts its ids at 1 again) or
// the proxy's client leaving drops them, and past the bound the oldest
// goes, not one still awaited.
func TestRedactorForgets(t *testing.T) {
	get := func(id int) []byte {
		return []byte(fmt.Sprintf(`{"execute":"qom-get","arguments":{"path":"/objects/s0","property":"data"},"id":%d}`, id))
	}
	var r redactor
	r.message("", get(1))
	r.message("", []byte(`{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}`))
	if reply := `{"return": "none-machine", "id": 1}`; string(r.message("", []byte(reply))) != reply {
		t.Errorf("a new session's reply hidden by the old session's request")
	}

	out := &proxyOutput{w: io.Discard, log: io.Discard}
	out.trace("client 1", protocol.Received, get(1))
	out.trace("client 2", protocol.Received, get(1))
	out.left("client 1")
	if _, ok := out.redact.pending[pendingKey("client 2", json.RawMessage("1"))]; !ok || len(out.redact.pending) != 1 {
		t.Errorf("after client 1 left, awaited: %v", out.redact.pending)
	}

	var b redactor
	for id := 1; id <= maxPendingSecrets+1; id++ {
		b.message("", get(id))
	}
	for id := 1; id <= maxPendingSecrets+1; id++ {
		reply := fmt.Sprintf(`{"return": "hunter2", "id": %d}`, id)
		if hidden := string(b.message("", []byte(reply))) != reply; hidden != (id > 1) {
			t.Errorf("past the bound, reply %d hidden: %v", id, hidden)
		}
	}
}

// A client that sends two secret reads with one id, both in flight
// (through the proxy: QEMU sees ids of the proxy's own), has both
// replies hidden, not only the first.
func TestRedactorReusedID(t *testing.T) {
	out := &proxyOutput{w: io.Discard, log: io.Discard}
	get := []byte(`{"execute":"qom-get","arguments":{"path":"/objects/s0","property":"data"},"id":"x"}`)
	out.trace("client 1", protocol.Received, get)
	out.trace("client 1", protocol.Received, get)
	for i := range 3 {
		reply := fmt.Sprintf(`{"return": "hunter%d", "id": "x"}`, i)
		if hidden := string(out.redact.message("client 1", []byte(reply))) != reply; hidden != (i < 2) {
			t.Errorf("reply %d hidden: %v", i, hidden)
		}
	}
	if len(out.redact.pending) != 0 {
		t.Errorf("still awaited: %v", out.redact.pending)
	}
}

// Through the proxy, a client that sends a plain request and then a
// secret read with one id, both in flight, pairs the secret's reply with
// no request; it is hidden by its value, which the redactor hid on
// QEMU's side of the proxy a moment before (the proxy hands QEMU's reply
// on byte for byte but for the id).
func TestRedactorReusedIDMixed(t *testing.T) {
	var log bytes.Buffer
	out := &proxyOutput{w: io.Discard, log: &log}
	out.trace("client 1", protocol.Received, []byte(`{"execute":"query-name","id":1}`))
	out.trace("client 1", protocol.Received, []byte(`{"execute":"qom-get","arguments":{"path":"/objects/s0","property":"data"},"id":1}`))
	out.trace("qemu", protocol.Sent, []byte(`{"execute":"query-name","id":7}`))
	out.trace("qemu", protocol.Sent, []byte(`{"execute":"qom-get","arguments":{"path":"/objects/s0","property":"data"},"id":8}`))
	out.trace("qemu", protocol.Received, []byte(`{"return": {}, "id": 7}`))
	out.trace("client 1", protocol.Sent, []byte(`{"return": {}, "id": 1}`))
	out.trace("qemu", protocol.Received, []byte(`{"return": "hunter2", "id": 8}`))
	out.trace("client 1", protocol.Sent, []byte(`{"return": "hunter2", "id": 1}`))
	if bytes.Contains(log.Bytes(), []byte("hunter2")) || bytes.Count(log.Bytes(), []byte(redactedValue)) < 2 {
		t.Errorf("log:\n%s", log.Bytes())
	}
	// The value is forgotten once hiddenFor replies have passed.
	for i := range hiddenFor {
		out.redact.message("qemu", []byte(fmt.Sprintf(`{"return": {}, "id": %d}`, 100+i)))
	}
	if reply := `{"return": "hunter2", "id": 5}`; string(out.redact.message("client 1", []byte(reply))) != reply || len(out.redact.hidden) != 0 {
		t.Errorf("still hidden after %d replies: %d kept", hiddenFor, len(out.redact.hidden))
	}
}

// Messages that cannot concern a secret are neither decoded nor copied,
// even while a reply is awaited: the proxy passes all its traffic through
// one redactor, under one lock.
func TestRedactorDoesNotDecode(t *testing.T) {
	var r redactor
	r.message("client 1", []byte(`{"execute":"qom-get","arguments":{"path":"/objects/s0","property":"data"},"id":1}`))
	for _, msg := range [][]byte{
		[]byte(`{"event": "STOP", "data": {}, "timestamp": {"seconds": 1, "microseconds": 2}}`),
		[]byte(`{"execute":"guest-file-write","arguments":{"handle":1,"buf-b64":"` + strings.Repeat("QUJD", 4096) + `"}}`),
	} {
		if n := testing.AllocsPerRun(10, func() { r.message("qemu", msg) }); n != 0 {
			t.Errorf("%d allocations for %.60s...", int(n), msg)
		}
	}
}

// HMP gives and takes secrets as QMP does: qom-get and qom-set of a
// secret's data, object_add with JSON (escapes and all), words apart by
// tabs. QEMU does what each line says; none reaches the log in clear.
func TestTrafficHidesHMPSecrets(t *testing.T) {
	sock := qmptest.StartQEMU(t)
	logFile := filepath.Join(t.TempDir(), "traffic.log")
	lines := []string{
		`hmp object_add {"qom-type":"secret","id":"s0","d\u0061ta":"hunter20"}`,
		`{"execute":"human-monitor-command","arguments":{"command-line":"object_add {\"qom-type\":\"secret\",\"id\":\"s1\",\"d\\u0061ta\":\"hunter21\"}"}}`,
		`{"execute":"human-monitor-command","arguments":{"command-line":"object_add\tsecret,id=s2,data=hunter22"}}`,
		"hmp qom-set /objects/s0 data hunter30",
		"hmp qom-get /objects/s0 data",
		`{"execute":"human-monitor-command","arguments":{"command-line":"qom-get\t/objects/s1\tdata"}}`,
		"qom-get path=/objects/s2 property=data",
		`{"execute":"human-monitor-command","arguments":{"command-line":"set_password\tvnc\thunter40"}}`,
	}
	r := run(t, strings.Join(lines, "\n")+"\n", "-v", "--log", logFile, "connect", sock)
	if r.code != ExitOK {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"hunter30", "hunter21", `"hunter22"`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("QEMU did not give back %s: stdout %q", want, r.stdout)
		}
	}
	log, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"--log file": string(log), "-v": r.stderr} {
		for _, l := range strings.Split(text, "\n") {
			if strings.Contains(l, "hunter") {
				t.Errorf("%s holds a secret: %s", what, l)
			}
		}
	}
	// Every HMP line and its reply, and the qom-get's reply.
	for want, n := range map[string]int{`"command-line":"object_add <redacted>"`: 3, `"command-line":"qom-set <redacted>"`: 1,
		`"command-line":"set_password <redacted>"`: 1, `"return":"<redacted>"`: 8} {
		if got := strings.Count(string(log), want); got != n {
			t.Errorf("--log file has %q %d times, want %d", want, got, n)
		}
	}
}

// No secret typed at the shell, in any spelling, reaches the --log file
// or -v's display in clear; QEMU gets it, and qom-get still prints it.
func TestTrafficHidesSecrets(t *testing.T) {
	sock := qmptest.StartQEMU(t)
	logFile := filepath.Join(t.TempDir(), "traffic.log")
	lines := []string{
		"object-add qom-type=secret id=s0 data=hunter2",
		`object-add qom-type=secret id=s1 "data"=hunter2`,
		`{"execute":"object-add","arguments":{"qom-type":"secret","id":"s2","d\u0061ta":"hunter2"}}`,
		"hmp object_add secret,id=s3,data=hunter2",
		"qom-get path=/objects/s3 property=data",
		"qom-set path=/objects/s1 property=data value=hunter2",
		"hmp set_password vnc hunter2",
		`{"execute":"human-monitor-command","arguments":{"command-line":"set_p\u0061ssword vnc hunter2"}}`,
		"change-vnc-password password=hunter2", // no VNC: an error, the last line
	}
	r := run(t, strings.Join(lines, "\n")+"\n", "-v", "--log", logFile, "connect", sock)
	if r.code != ExitQMPError || !strings.Contains(r.stdout, `"hunter2"`) {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	e := run(t, "", "exec", "-v", "--log", logFile, "-s", sock, "object-add", "qom-type=secret", "id=s4", "data=hunter2")
	if e.code != ExitOK {
		t.Fatalf("exec: exit %d, %s", e.code, e.stderr)
	}
	log, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"--log file": string(log), "-v (shell)": r.stderr, "-v (exec)": e.stderr} {
		for _, l := range strings.Split(text, "\n") {
			if strings.Contains(l, "hunter2") {
				t.Errorf("%s holds the secret: %s", what, l)
			}
		}
	}
	// The four secret objects, the qom-get and the three HMP lines'
	// replies, the qom-set, the VNC password.
	for want, n := range map[string]int{`"data":"<redacted>"`: 4, `"return":"<redacted>"`: 4, `"value":"<redacted>"`: 1, `"password":"<redacted>"`: 1} {
		if got := strings.Count(string(log), want); got != n {
			t.Errorf("--log file has %q %d times, want %d", want, got, n)
		}
	}
}

// The proxy's --log hides its clients' secrets, sent in any spelling
// QEMU takes, on the client's side and on QEMU's.
func TestProxyLogHidesSecrets(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "traffic.log")
	p := startProxyCmd(t, qmptest.StartQEMU(t), "--log", logFile)
	c, err := net.Dial("unix", p.path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rd := bufio.NewReader(c)
	for _, msg := range []string{
		"", // the greeting
		`{"execute":"qmp_capabilities"}`,
		`{"execute":"object-add","arguments":{"qom-type":"s\u0065cret","id":"s0","d\u0061ta":"hunter2"},"id":1}`,
		`{"execute":"qom-get","arguments":{"path":"/objects/s0","property":"data"},"id":2}`,
	} {
		if msg != "" {
			if _, err := c.Write([]byte(msg + "\n")); err != nil {
				t.Fatal(err)
			}
		}
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(msg, "qom-get") && !strings.Contains(line, `"hunter2"`) {
			t.Fatalf("qom-get through the proxy: %s", line)
		}
	}
	// A tab or a newline in a secret's string is a lexical error, which
	// the proxy answers quoting the token it failed on (the secret's
	// first part); after a newline it reads on from the next ':', whose
	// words are messages of their own, answered quoting them.
	if _, err := c.Write([]byte(`{"execute":"object-add","arguments":{"qom-type":"secret","id":"s1","data":"TOPSECRET` + "\t" + `X"}}` +
		// (An extra quote closes the string the last one opens, so
		// that what follows is read as written.)
		`{"execute":"object-add","arguments":{"qom-type":"secret","id":"s2","data":"top` + "\n" + `sec:retword:12345:""}}` +
		`{"execute":"query-status","id":9}`)); err != nil {
		t.Fatal(err)
	}
	stray := false
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		stray = stray || strings.Contains(line, "stray '\\\"TOPSECRET")
		if strings.Contains(line, `"id": 9`) { // QEMU's spacing, the client's id
			break
		}
	}
	if !stray {
		t.Error("the client got no error quoting the stray token")
	}
	c.Close()
	// The proxy's answer to the query-status is written to the log
	// before the client's copy; the other lines are in by then.
	log, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(log), "hunter2") || strings.Count(string(log), `"<redacted>"`) != 4 ||
		strings.Contains(string(log), "TOPSECRET") || strings.Contains(string(log), "retword") ||
		strings.Contains(string(log), "12345") || !strings.Contains(string(log), `stray '<redacted>'`) {
		t.Errorf("--log file:\n%s", log)
	}
}

// ga exec's --log hides the password guest-set-user-password carries.
// A fake agent: the real one runs on this host.
func TestGALogHidesPassword(t *testing.T) {
	f := gatest.StartFake(t, func(req gatest.Request) map[string]any {
		return map[string]any{"return": map[string]any{}}
	})
	logFile := filepath.Join(t.TempDir(), "traffic.log")
	r := run(t, "", "ga", "exec", "-v", "--log", logFile, "-s", f.Path, "guest-set-user-password", "username=u", "password=aHVudGVyMg==", "crypted=false")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for req := range f.Received {
		if req.Execute == "guest-set-user-password" {
			if !strings.Contains(string(req.Arguments), "aHVudGVyMg==") {
				t.Errorf("the agent got %s", req.Arguments)
			}
			break
		}
	}
	log, _ := os.ReadFile(logFile)
	if strings.Contains(string(log), "aHVudGVyMg==") || !strings.Contains(string(log), `"password":"<redacted>"`) || strings.Contains(r.stderr, "aHVudGVyMg==") {
		t.Errorf("--log file:\n%s\n-v:\n%s", log, r.stderr)
	}
}
