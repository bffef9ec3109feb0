package cmd

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/ga/gatest"
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
		// A secret's name is not a secret; an iothread's data would be.
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
		{"", `{"return": "hunter2", "id": {"a": 1}}`, ``},
		{"", `{"execute":"qom-get","arguments":{"path":"/machine","property":"type"}}`, ``},
		{"", `{"return": "none-machine"}`, ``},
		// Not JSON: hidden whole if its words carry a secret.
		{"", `{'execute':'object-add','arguments':{'qom-type':'secret','id':'s0','data':'hunter2'}}`, `"<redacted> (not JSON)"`},
		{"", `{'execute':'query-status'}`, ``},
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
	c.Close()
	// The proxy's answer to the qom-get is written to the log before
	// the client's copy; QEMU's and the client's lines are in by then.
	log, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(log), "hunter2") || strings.Count(string(log), `"<redacted>"`) != 4 {
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
