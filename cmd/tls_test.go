package cmd

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// runEnv is run with an environment of env only.
func runEnv(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errOut qmptest.Buffer
	code := Execute(testFactory(strings.NewReader(""), &out, &errOut, env, &fakeSignals{}), args)
	r := result{code: code, stdout: out.String(), stderr: errOut.String()}
	r.stderrLines = strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	return r
}

func TestExecTLS(t *testing.T) {
	dir := qmptest.NewTLSDir(t)
	second := filepath.Join(ptyShortTempDir(t), "second.sock")
	addr := qmptest.StartQEMUTLS(t, dir, "-qmp", "unix:"+second+",server=on,wait=off")

	t.Run("Flags", func(t *testing.T) {
		run(t, "", "exec", "--tls-dir", dir, "-s", addr, "qom-get", "path=/machine", "property=type").
			expect(t, ExitOK, "\"none-machine\"\n", "")
	})
	t.Run("Environment", func(t *testing.T) {
		runEnv(t, map[string]string{"QMPSH_TLS_DIR": dir, "QMP_SOCKET": addr}, "exec", "qom-get", "path=/machine", "property=type").
			expect(t, ExitOK, "\"none-machine\"\n", "")
	})
	t.Run("SeparateFiles", func(t *testing.T) {
		run(t, "", "exec", "--tls-ca", filepath.Join(dir, "ca-cert.pem"),
			"--tls-cert", filepath.Join(dir, "client-cert.pem"), "--tls-key", filepath.Join(dir, "client-key.pem"),
			"--tls-server-name", "localhost", "-s", addr, "qom-get", "path=/machine", "property=type").
			expect(t, ExitOK, "\"none-machine\"\n", "")
	})
	t.Run("Schema", func(t *testing.T) {
		r := run(t, "", "schema", "--tls-dir", dir, "-s", addr, "query-status")
		if r.code != ExitOK || !strings.Contains(r.stdout, "query-status") {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("Events", func(t *testing.T) {
		n := newNegotiated()
		var out qmptest.Buffer
		done := n.start(t, &out, "events", "--tls-dir", dir, "-s", addr, "--name", "STOP", "--count", "1")
		<-n.ready
		run(t, "", "exec", "-s", second, "stop").mustExit(t, ExitOK)
		if code := <-done; code != ExitOK || !strings.Contains(out.String(), `"event":"STOP"`) {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), n.String())
		}
		run(t, "", "exec", "-s", second, "cont").mustExit(t, ExitOK)
	})
	t.Run("ConnectPiped", func(t *testing.T) {
		run(t, "query-status\n", "connect", "--tls-dir", dir, addr).
			expect(t, ExitOK, `{"status":"running","singlestep":false,"running":true}`+"\n", "")
	})
	t.Run("WrongName", func(t *testing.T) {
		r := run(t, "", "exec", "--tls-dir", dir, "--tls-server-name", "vm7.example.org", "-s", addr, "query-status")
		r.mustSay(t, ExitConnection, "cannot connect to "+addr, "certificate is valid for", "not vm7.example.org", "--tls-server-name")
	})
	t.Run("UnknownAuthority", func(t *testing.T) {
		r := run(t, "", "exec", "--tls-dir", qmptest.NewTLSDir(t), "-s", addr, "query-status")
		r.mustSay(t, ExitConnection, "cannot connect to "+addr, "unknown authority", "give the CA that signed QEMU's certificate")
	})
	t.Run("NoClientCertificate", func(t *testing.T) {
		// QEMU's verify-peer=on refuses it: with TLS 1.3 that shows as
		// QEMU hanging up after the handshake.
		r := run(t, "", "exec", "--tls-ca", filepath.Join(dir, "ca-cert.pem"), "-s", addr, "query-status")
		r.mustSay(t, ExitConnection, addr, "refused our TLS certificate")
		if r.stdout != "" {
			t.Errorf("stdout %q", r.stdout)
		}
	})
	t.Run("BadFlags", func(t *testing.T) {
		r := run(t, "", "exec", "--tls-cert", filepath.Join(dir, "client-cert.pem"), "-s", addr, "query-status")
		r.mustSayUsage(t, "--tls-cert and --tls-key")
		r = run(t, "", "exec", "--tls-dir", filepath.Join(dir, "nothing"), "-s", addr, "query-status")
		r.mustSayUsage(t, "--tls-dir", "not a directory")
		// TLS is the address's to ask for: a flag beside a plain address
		// is a mistake, said before anything is dialled.
		plain := "tcp:" + strings.TrimPrefix(addr, "tls:")
		r = run(t, "", "exec", "--tls-dir", dir, "-s", plain, "query-status")
		r.mustSayUsage(t, "--tls-dir is for tls:HOST:PORT addresses, and "+plain+" is not one")
		r = run(t, "", "connect", "--tls-ca", filepath.Join(dir, "ca-cert.pem"), plain)
		r.mustSayUsage(t, "--tls-ca is for tls:HOST:PORT addresses")
	})
}

// TestTLSMismatch: a tls: address on a plain monitor, and a tcp: one on
// a TLS monitor, each a one-line error that says what to dial instead.
func TestTLSMismatch(t *testing.T) {
	dir := qmptest.NewTLSDir(t)
	t.Run("TLSAddressOnPlainMonitor", func(t *testing.T) {
		addr := "tls:" + strings.TrimPrefix(qmptest.StartQEMUTCP(t), "tcp:")
		run(t, "", "exec", "--tls-dir", dir, "-s", addr, "query-status").
			mustSay(t, ExitConnection, "cannot connect to "+addr, "does not speak TLS", "tcp:HOST:PORT")
	})
	t.Run("TCPAddressOnTLSMonitor", func(t *testing.T) {
		// QEMU waits for our handshake as we wait for its greeting:
		// only the timeout ends it.
		addr := "tcp:" + strings.TrimPrefix(qmptest.StartQEMUTLS(t, dir), "tls:")
		run(t, "", "exec", "--timeout", "300ms", "-s", addr, "query-status").
			mustSay(t, ExitTimeout, addr+": timed out after 300ms waiting for the QMP greeting", busyHint, "or it expects TLS: dial tls:HOST:PORT")
	})
}

// An expired certificate is one QEMU will not serve, so a Go server
// shows it.
func TestExecTLSExpired(t *testing.T) {
	dir := qmptest.NewTLSDirWith(t, qmptest.TLSDirConfig{Expired: true})
	ln := qmptest.ListenTLS(t, dir)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.(*tls.Conn).Handshake() // fails: the client hangs up
		c.Close()
	}()
	addr := "tls:" + ln.Addr().String()
	r := run(t, "", "exec", "--tls-dir", dir, "-s", addr, "query-status")
	r.mustSay(t, ExitConnection, "cannot connect to "+addr, "expired", "renew the certificate")
	<-done
}

// Fan-out over four TLS monitors, one of them with a certificate from
// another CA: its line is a ConnectionError naming why, and the exit
// status is 3.
func TestExecFanOutTLS(t *testing.T) {
	dir := qmptest.NewTLSDir(t)
	a, b, c := qmptest.StartQEMUTLS(t, dir), qmptest.StartQEMUTLS(t, dir), qmptest.StartQEMUTLS(t, dir)
	stranger := qmptest.StartQEMUTLS(t, qmptest.NewTLSDir(t))

	r := runEnv(t, map[string]string{"QMPSH_TLS_DIR": dir}, "exec", "-s", a, "-s", b, "-s", c, "-s", stranger, "query-status")
	got := parseFanLines(t, r.stdout)
	for _, tg := range []string{a, b, c} {
		var st struct{ Status string }
		if json.Unmarshal(got[tg].Return, &st) != nil || st.Status != "running" || got[tg].Error != nil {
			t.Errorf("%s: %+v", tg, got[tg])
		}
	}
	if e := got[stranger].Error; e == nil || e.Class != "ConnectionError" ||
		!strings.Contains(e.Desc, "cannot connect to "+stranger) || !strings.Contains(e.Desc, "certificate signed by unknown authority") {
		t.Errorf("the other CA's line: %+v", got[stranger])
	}
	if len(got) != 4 || r.code != ExitConnection || r.stderr != "" {
		t.Fatalf("%d lines, exit %d, stderr %q: want 4, 3 and nothing on stderr", len(got), r.code, r.stderr)
	}
}

// QEMU dials in over TLS: qmpsh accept tells it how, verifies its
// certificate and shows its own.
func TestAcceptTLS(t *testing.T) {
	qmptest.RequireQEMU(t, "qemu-system-x86_64")
	t.Run("ECDSA", func(t *testing.T) { testAcceptTLS(t, qmptest.NewTLSDir(t)) })
	// QEMU's TLS client sends no RSA client certificate over TLS 1.3 to
	// Go's server: accept must still take it.
	t.Run("RSA", func(t *testing.T) { testAcceptTLS(t, qmptest.NewTLSDirWith(t, qmptest.TLSDirConfig{RSA: true})) })
}

// testAcceptTLS runs accept on a TLS address with the certificates in
// dir, starts QEMU to dial it as accept says, and runs a command.
func testAcceptTLS(t *testing.T, dir string) {
	stdinR, stdinW := io.Pipe()
	errR, errW := io.Pipe()
	var out qmptest.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Main([]string{"accept", "--tls-dir", dir, "tls:127.0.0.1:0"}, &IOStreams{In: stdinR, Out: &out, ErrOut: errW})
		errW.Close()
	}()
	errLines := bufio.NewScanner(errR)
	if !errLines.Scan() {
		t.Fatal("qmpsh printed nothing")
	}
	m := regexp.MustCompile(`^qmpsh: waiting for QEMU; start it with: -object tls-creds-x509,id=tls0,dir=(.*),endpoint=client ` +
		`-chardev socket,id=mon,host=127\.0\.0\.1,port=(\d+),tls-creds=tls0 -mon chardev=mon,mode=control$`).FindStringSubmatch(errLines.Text())
	if m == nil || m[1] != dir {
		t.Fatalf("stderr %q", errLines.Text())
	}
	go io.Copy(io.Discard, errR)
	qmptest.StartQEMUClientTLS(t, net.JoinHostPort("127.0.0.1", m[2]), dir)
	acceptedAsksType(t, stdinW, done, &out)
}

func TestAcceptTLSNeedsCredentials(t *testing.T) {
	dir := qmptest.NewTLSDir(t)
	os.Remove(filepath.Join(dir, "server-cert.pem"))
	r := run(t, "", "accept", "--tls-dir", dir, "tls:127.0.0.1:0")
	r.mustSayUsage(t, "needs a server certificate")
}

// The proxy on TCP takes TLS clients with certificates from its CA, and
// refuses the rest; plain TCP needs --insecure-listen.
func TestProxyTLS(t *testing.T) {
	dir := qmptest.NewTLSDir(t)
	qemu := qmptest.StartQEMUTLS(t, dir)

	stderr := new(qmptest.Buffer)
	sigs := &fakeSignals{}
	code := make(chan int, 1)
	f := testFactory(strings.NewReader(""), io.Discard, stderr, map[string]string{"QMPSH_TLS_DIR": dir}, sigs)
	go func() { code <- Execute(f, []string{"proxy", "-v", "-s", qemu, "--listen", "tls:127.0.0.1:0"}) }()
	defer func() {
		sigs.raise(syscall.SIGTERM)
		if c := <-code; c != 0 {
			t.Errorf("proxy exit %d; stderr:\n%s", c, stderr)
		}
	}()
	stderr.WaitFor(t, "listening on tls:127.0.0.1:", 1)
	listen := regexp.MustCompile(`listening on (tls:127\.0\.0\.1:\d+)`).FindStringSubmatch(stderr.String())[1]

	run(t, "", "exec", "--tls-dir", dir, "-s", listen, "qom-get", "path=/machine", "property=type").
		expect(t, ExitOK, "\"none-machine\"\n", "")
	r := run(t, "", "exec", "--tls-ca", filepath.Join(dir, "ca-cert.pem"), "-s", listen, "query-status")
	r.mustSay(t, ExitConnection, listen)
	if r.stdout != "" {
		t.Errorf("a client without a certificate got %q", r.stdout)
	}
	// The proxy says so, and never counted it as a client.
	stderr.WaitFor(t, "qmpsh: warning: client refused from=127.0.0.1:", 1)
	if n := strings.Count(stderr.String(), "client connected"); n != 1 {
		t.Errorf("%d clients connected, want 1 (the one with a certificate):\n%s", n, stderr)
	}
	r = run(t, "", "exec", "--tls-dir", qmptest.NewTLSDir(t), "-s", listen, "query-status")
	r.mustSay(t, ExitConnection, listen, "unknown authority")
}

func TestProxyPlainTCPNeedsInsecureListen(t *testing.T) {
	sock := qmptest.StartQEMU(t)
	r := run(t, "", "proxy", "-s", sock, "--listen", "127.0.0.1:0")
	r.mustSayUsage(t, "--listen 127.0.0.1:0", "plain TCP", "tls:HOST:PORT", "--insecure-listen")

	dir := qmptest.NewTLSDir(t)
	os.Remove(filepath.Join(dir, "server-cert.pem"))
	r = run(t, "", "proxy", "-s", sock, "--tls-dir", dir, "--listen", "tls:127.0.0.1:0")
	r.mustSayUsage(t, "needs a server certificate")

	stderr := new(qmptest.Buffer)
	sigs := &fakeSignals{}
	code := make(chan int, 1)
	f := testFactory(strings.NewReader(""), io.Discard, stderr, nil, sigs)
	go func() {
		code <- Execute(f, []string{"proxy", "-s", sock, "--insecure-listen", "--listen", "127.0.0.1:0"})
	}()
	stderr.WaitFor(t, "listening on tcp:127.0.0.1:", 1)
	if !strings.Contains(stderr.String(), "qmpsh: warning: --insecure-listen: 127.0.0.1:0 takes clients without TLS") {
		t.Errorf("no warning on stderr:\n%s", stderr)
	}
	sigs.raise(syscall.SIGTERM)
	if c := <-code; c != 0 {
		t.Errorf("proxy exit %d", c)
	}
}

// mustSayUsage is mustSay for a usage error: one line saying parts, then
// the pointer to a command's --help.
func (r result) mustSayUsage(t *testing.T, parts ...string) {
	t.Helper()
	if n := len(r.stderrLines); n != 2 || !usageHint.MatchString(r.stderrLines[1]) {
		t.Errorf("stderr %q: want one line and the pointer to --help", r.stderr)
	}
	r.stderrLines = r.stderrLines[:1]
	r.mustSay(t, ExitUsage, parts...)
}

// TestQEMUDialArgsHost: the command line accept suggests has QEMU dial a
// host it can check our certificate against: for a listener on every
// address, the certificate's first name (HOST without one); otherwise the
// address listened on.
func TestQEMUDialArgsHost(t *testing.T) {
	dir := qmptest.NewTLSDir(t) // names: 127.0.0.1, ::1, localhost
	cfg, err := (&TLSOptions{Dir: dir}).config()
	if err != nil {
		t.Fatal(err)
	}
	named := func(hosts ...string) *tls.Config {
		c, err := (&TLSOptions{Dir: qmptest.NewTLSDirWith(t, qmptest.TLSDirConfig{Hosts: hosts})}).config()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		bound string
		cfg   *tls.Config
		want  string
	}{
		{"tls:0.0.0.0:4444", cfg, "host=localhost,port=4444,"},
		{"tls:0.0.0.0:4444", named("*.example.com", "vm1.example.com", "192.0.2.1"), "host=vm1.example.com,port=4444,"},
		{"tls:0.0.0.0:4444", named("*.example.com", "192.0.2.1"), "host=192.0.2.1,port=4444,"},
		{"tls:[::]:4444", cfg, "host=localhost,port=4444,"},
		{"tls:0.0.0.0:4444", nil, "host=HOST,port=4444,"},
		{"tls:127.0.0.1:4444", cfg, "host=127.0.0.1,port=4444,"},
		{"tcp:0.0.0.0:4444", cfg, "-qmp tcp:0.0.0.0:4444"},
		// A UNIX path as QEMU, which may run elsewhere, must be given
		// it: absolute, a comma doubled.
		{"unix:/run/vm,1.sock", nil, "-qmp unix:/run/vm,,1.sock"},
		{"/run/vm.sock", nil, "-qmp unix:/run/vm.sock"},
		{"acc.sock", nil, "-qmp unix:" + filepath.Join(cwd, "acc.sock")},
	} {
		if got := qemuDialArgs(tc.bound, dir, tc.cfg); !strings.Contains(got, tc.want) {
			t.Errorf("qemuDialArgs(%s) = %s; want it to contain %s", tc.bound, got, tc.want)
		}
	}
	// The credentials' directory too is absolute, a comma doubled: QEMU
	// need not start where qmpsh did.
	want := "dir=" + strings.ReplaceAll(filepath.Join(cwd, "pki,a"), ",", ",,") + ",endpoint=client"
	if got := qemuDialArgs("tls:127.0.0.1:4444", "pki,a", cfg); !strings.Contains(got, want) {
		t.Errorf("qemuDialArgs with --tls-dir pki,a = %s; want it to contain %s", got, want)
	}
}

var usageHint = regexp.MustCompile(`^Run 'qmpsh( [a-z]+)* --help' for usage\.$`)

// TestUsageHintNamesTheCommand: a usage error points to the help of the
// command that was misused; an unknown command or help topic to qmpsh's.
func TestUsageHintNamesTheCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		help string
	}{
		{[]string{"exce"}, "qmpsh"},
		{[]string{"help", "exce"}, "qmpsh"},
		{[]string{"--bogus"}, "qmpsh"},
		{[]string{"exec", "--bogus"}, "qmpsh exec"},
		{[]string{"job", "wait", "--bogus", "j1"}, "qmpsh job wait"},
		{[]string{"job", "wiat"}, "qmpsh job"},
		{[]string{"completion", "tcsh"}, "qmpsh completion"},
		{[]string{"ga", "exec", "-s", "/nonexistent"}, "qmpsh ga exec"},
	} {
		r := run(t, "", tc.args...)
		r.mustExit(t, ExitUsage)
		if want := "Run '" + tc.help + " --help' for usage."; len(r.stderrLines) == 0 || r.stderrLines[len(r.stderrLines)-1] != want {
			t.Errorf("%q: stderr %q, want it to end with %q", tc.args, r.stderr, want)
		}
	}
}
