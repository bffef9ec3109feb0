package cmd

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"go.uber.org/goleak"

	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
	"github.com/qmpsh/qmpsh/pkg/shell"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// result is what one qmpsh run printed and returned.
type result struct {
	code        int
	stdout      string
	stderr      string
	stderrLines []string
}

// run runs qmpsh with args and stdin, on non-terminal streams, the way a
// script runs it.
func run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errOut qmptest.Buffer
	ios := &IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut}
	code := Main(args, ios)
	r := result{code: code, stdout: out.String(), stderr: errOut.String()}
	r.stderrLines = strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	return r
}

func (r result) expect(t *testing.T, code int, stdout, stderr string) {
	t.Helper()
	if r.code != code || r.stdout != stdout || r.stderr != stderr {
		t.Errorf("exit %d, stdout %q, stderr %q\nwant exit %d, stdout %q, stderr %q",
			r.code, r.stdout, r.stderr, code, stdout, stderr)
	}
}

func TestExecQEMU(t *testing.T) {
	sock := qmptest.StartQEMU(t)

	t.Run("Success", func(t *testing.T) {
		run(t, "", "exec", "-s", sock, "qom-get", "path=/machine", "property=type").
			expect(t, ExitOK, "\"none-machine\"\n", "")
	})
	t.Run("QMPSocketVariable", func(t *testing.T) {
		t.Setenv("QMP_SOCKET", sock)
		r := run(t, "", "exec", "query-status")
		var st struct{ Status string }
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil || st.Status != "running" {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		if strings.Count(r.stdout, "\n") != 1 {
			t.Errorf("piped output should be one compact line: %q", r.stdout)
		}
	})
	t.Run("Pretty", func(t *testing.T) {
		// tidwall/pretty keeps what fits in 80 columns on one line.
		r := run(t, "", "exec", "--pretty", "-s", sock, "query-status")
		if r.code != 0 || r.stdout != "{ \"status\": \"running\", \"singlestep\": false, \"running\": true }\n" {
			t.Fatalf("exit %d, stdout %q", r.code, r.stdout)
		}
		r = run(t, "", "exec", "--pretty", "-s", sock, "qom-list", "path=/machine")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "[\n    { \"name\": \"type\", \"type\": \"string\" },\n") {
			t.Fatalf("exit %d, stdout %q", r.code, r.stdout)
		}
	})
	t.Run("ColorAlways", func(t *testing.T) {
		r := run(t, "", "exec", "--color", "always", "-s", sock, "qom-get", "path=/machine", "property=type")
		if r.code != 0 || !strings.Contains(r.stdout, "\x1b[") {
			t.Fatalf("exit %d, stdout %q: want ANSI colour", r.code, r.stdout)
		}
	})
	t.Run("RawJSON", func(t *testing.T) {
		r := run(t, "", "exec", "-s", sock, `{"execute": "qom-get", "arguments": {"path": "/machine", "property": "type"}, "id": [1]}`)
		r.expect(t, ExitOK, "\"none-machine\"\n", "")
	})
	t.Run("CommandNotFound", func(t *testing.T) {
		run(t, "", "exec", "-s", sock, "foo").
			expect(t, ExitQMPError, "", "CommandNotFound: The command foo has not been found\n")
	})
	t.Run("GenericError", func(t *testing.T) {
		run(t, "", "exec", "-s", sock, "object-add", "qom-type=secret", "id=s0").
			expect(t, ExitQMPError, "", "GenericError: Either 'file' or 'data' must be provided\n")
	})
	t.Run("Verbose", func(t *testing.T) {
		r := run(t, "", "exec", "-v", "-s", sock, "query-status")
		if r.code != 0 || !strings.Contains(r.stderr, `--> {"execute":"query-status"}`) ||
			!strings.Contains(r.stderr, `<-- {"return": {"status": "running"`) {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("Log", func(t *testing.T) {
		logFile := filepath.Join(t.TempDir(), "traffic.log")
		for range 2 {
			if r := run(t, "", "exec", "--log", logFile, "-s", sock, "query-status"); r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
		}
		b, err := os.ReadFile(logFile)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		// greeting, negotiation out and in, command out and in: twice,
		// appended.
		if len(lines) != 10 {
			t.Fatalf("log has %d lines, want 10:\n%s", len(lines), b)
		}
		stamp := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z (-->|<--) \{`)
		for _, l := range lines {
			if !stamp.MatchString(l) {
				t.Errorf("log line without timestamp and direction: %q", l)
			}
		}
	})
}

func TestExecUsage(t *testing.T) {
	t.Setenv("QMP_SOCKET", "")
	hint := "Run 'qmpsh exec --help' for usage.\n"
	for _, tc := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"NoAddress", []string{"exec", "query-status"}, "qmpsh: no address: give -s ADDR (QEMU's -qmp socket) or set QMP_SOCKET\n" + hint},
		{"WaitTimeoutAlone", []string{"exec", "-s", "/nonexistent", "--wait-timeout", "1s", "stop"},
			"qmpsh: --wait-timeout needs --wait-event or --wait-job; --timeout bounds the command itself\n" + hint},
		{"NoCommand", []string{"exec", "-s", "/nonexistent"}, "qmpsh: exec needs a command\n" + hint},
		{"EmptyWaitEvent", []string{"exec", "-s", "/nonexistent", "--wait-event", "", "query-status"},
			"qmpsh: --wait-event needs an event name, such as STOP\n" + hint},
		{"UnknownFlag", []string{"exec", "--bogus", "query-status"}, "qmpsh: unknown flag: --bogus\n" + hint},
		{"BadColor", []string{"exec", "--color", "pink", "-s", "/nonexistent", "query-status"},
			"qmpsh: --color must be auto, always or never, not \"pink\"\n" + hint},
		// Syntax errors in the QMP command: nothing is sent, so the
		// nonexistent socket is never tried.
		{"ArgumentWithoutEquals", []string{"exec", "-s", "/nonexistent", "qom-get", "path"},
			"qmpsh: syntax error at \"path\": expected key=value\n"},
		{"KeyFirst", []string{"exec", "-s", "/nonexistent", "a=1"},
			"qmpsh: expected a command name first, got \"a=1\"\n"},
		{"BadRawJSON", []string{"exec", "-s", "/nonexistent", `{"execute": `},
			""},
		// Keys wrong whatever QEMU's schema says are found before
		// connecting too.
		{"EmptyDottedSegment", []string{"exec", "-s", "/nonexistent", "query-status", "a.=1"},
			"qmpsh: syntax error at \"a.\": empty segment in dotted key\n"},
		{"KeyTwice", []string{"exec", "-s", "/nonexistent", "query-status", "a=1", "a=2"},
			"qmpsh: syntax error at \"a\": key is set more than once\n"},
		{"ValueAndObject", []string{"exec", "-s", "/nonexistent", "query-status", "a.b=1", "a=2"},
			"qmpsh: syntax error at \"a\": \"a\" is used both as a value and as an object\n"},
		{"TransactionNotClosed", []string{"exec", "-s", "/nonexistent", "transaction("},
			"qmpsh: syntax error at \"transaction(\": transaction block not closed: end it with \")\"\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, "", tc.args...)
			if r.code != ExitUsage || r.stdout != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2", r.code, r.stdout, r.stderr)
			}
			if tc.stderr != "" && r.stderr != tc.stderr {
				t.Errorf("stderr %q\nwant   %q", r.stderr, tc.stderr)
			}
			if len(r.stderrLines) == 0 || !strings.HasPrefix(r.stderrLines[0], "qmpsh: ") {
				t.Errorf("stderr %q does not start with a qmpsh: message", r.stderr)
			}
		})
	}
}

func TestExecConnection(t *testing.T) {
	t.Run("NoSuchSocket", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "none.sock")
		run(t, "", "exec", "-s", sock, "query-status").expect(t, ExitConnection, "",
			"qmpsh: cannot connect to "+sock+": no such file or directory\n")
	})
	t.Run("ConnectionDropped", func(t *testing.T) {
		s := qmptest.NewServer(func(c *qmptest.Conn) {
			c.Greet()
			if req, err := c.ReadRequest(); err == nil {
				c.Reply(req.ID, nil)
				c.ReadRequest()
			}
		})
		defer s.Close()
		run(t, "", "exec", "-s", s.Addr, "query-status").expect(t, ExitConnection, "",
			"qmpsh: "+s.Addr+": connection lost before the reply arrived: connection closed by peer\n")
	})
	t.Run("GarbageFromServer", func(t *testing.T) {
		s := qmptest.NewServer(func(c *qmptest.Conn) { c.WriteRaw([]byte("SSH-2.0-OpenSSH_9.2\r\n")) })
		defer s.Close()
		run(t, "", "exec", "-s", s.Addr, "query-status").expect(t, ExitConnection, "",
			"qmpsh: "+s.Addr+": QMP greeting: not a QMP greeting: SSH-2.0-OpenSSH_9.2\n")
	})
}

func TestExecTimeout(t *testing.T) {
	t.Run("NeverGreets", func(t *testing.T) {
		s := qmptest.NewServer(func(c *qmptest.Conn) { <-c.Done() })
		defer s.Close()
		run(t, "", "exec", "--timeout", "100ms", "-s", s.Addr, "query-status").expect(t, ExitTimeout, "",
			"qmpsh: "+s.Addr+": timed out after 100ms waiting for the QMP greeting; "+busyHint+"\n")
	})
	t.Run("ReplyNeverComes", func(t *testing.T) {
		s := qmptest.NewServer(func(c *qmptest.Conn) {
			c.Greet()
			if req, err := c.ReadRequest(); err == nil {
				c.Reply(req.ID, nil)
				c.ReadRequest()
				<-c.Done()
			}
		})
		defer s.Close()
		// --timeout bounds connecting too: leave a loaded machine the time
		// to negotiate, so that the deadline ends the wait for the reply.
		run(t, "", "exec", "--timeout", "1s", "-s", s.Addr, "query-status").expect(t, ExitTimeout, "",
			"qmpsh: "+s.Addr+": timed out after 1s waiting for the reply\n")
	})
	t.Run("BoundUnderAMillisecond", func(t *testing.T) {
		// The message gives the bound, not the client's own measure,
		// which starts a moment after the bound was set: under a
		// millisecond, the moment is most of it.
		s := qmptest.NewServer(func(c *qmptest.Conn) { <-c.Done() })
		defer s.Close()
		for _, args := range [][]string{
			{"exec", "-s", s.Addr, "query-status"},
			{"events", "-s", s.Addr},
			{"connect", s.Addr},
			{"job", "wait", "-s", s.Addr, "j0"},
		} {
			r := run(t, "", append([]string{"--timeout", "100us"}, args...)...)
			if r.code != ExitTimeout || !strings.HasPrefix(r.stderr, "qmpsh: "+s.Addr+": timed out after 100µs ") {
				t.Errorf("%s: exit %d, stderr %q; want 4, timed out after 100µs", args[0], r.code, r.stderr)
			}
		}
	})
}

func TestConnectPiped(t *testing.T) {
	sock := qmptest.StartQEMU(t)

	t.Run("ResultsAndEventsInOrder", func(t *testing.T) {
		r := run(t, "query-status\nstop\n\n# a comment\nquery-status\ncont\n", "connect", sock)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		want := []string{`"status":"running"`, `"event":"STOP"`, `{}`, `"status":"paused"`, `"event":"RESUME"`, `{}`}
		if r.code != 0 || len(lines) != len(want) {
			t.Fatalf("exit %d, stdout:\n%s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		for i, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d = %s, want it to contain %s", i, lines[i], w)
			}
		}
	})
	t.Run("FailureGivesStatus1", func(t *testing.T) {
		r := run(t, "foo\nqom-get path=/machine property=type\n", "connect", sock)
		r.expect(t, ExitQMPError, "\"none-machine\"\n", "CommandNotFound: The command foo has not been found\n")
	})
	t.Run("SyntaxErrorSendsNothingAndGoesOn", func(t *testing.T) {
		r := run(t, "qom-get path\nqom-get path=/machine property=type\n", "connect", sock)
		r.expect(t, ExitQMPError, "\"none-machine\"\n", "syntax error at \"path\": expected key=value\n")
	})
	t.Run("HMP", func(t *testing.T) {
		// HMP's text on a terminal; TestPipedShellBuiltinsPrintJSON: on a pipe.
		runTTY(t, "info status\n", "connect", "--hmp", sock).expect(t, ExitOK, "VM status: running\n", "")
		runTTY(t, "hmp info status\n", "connect", sock).expect(t, ExitOK, "VM status: running\n", "")
	})
	t.Run("HelpFromSchema", func(t *testing.T) {
		r := runTTY(t, "help query-status\nhelp query-statuss\n", "connect", sock)
		if r.code != ExitQMPError || !strings.HasPrefix(r.stdout, "query-status (command)\n") ||
			!strings.Contains(r.stdout, "status: enum (") {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stderr, `(did you mean "query-status"?)`) {
			t.Errorf("no suggestion for a misspelt name: %q", r.stderr)
		}
	})
	t.Run("Transaction", func(t *testing.T) {
		r := run(t, "transaction(\n)\n", "connect", sock)
		r.expect(t, ExitOK, "{}\n", "")
	})
	t.Run("TransactionWithRejectedLineSendsNothing", func(t *testing.T) {
		// On a pipe no one types the rejected action again: the block's
		// other actions must not run without it.
		r := run(t, "blockdev-add driver=null-co node-name=tx0\n"+
			"transaction(\n"+
			"block-dirty-bitmap-add node=tx0 name=b1\n"+
			"block-dirty-bitmap-add node=tx0 name=b2 granularity=big\n"+
			")\n"+
			"query-named-block-nodes flat=true\n", "connect", sock)
		if r.code != ExitQMPError || strings.Contains(r.stdout, `"dirty-bitmaps"`) || !strings.Contains(r.stdout, `"node-name":"tx0"`) {
			t.Errorf("exit %d, stdout %.300q: want status 1 and no bitmap added", r.code, r.stdout)
		}
		want := "block-dirty-bitmap-add: argument \"granularity\" expects an integer, got \"big\"\n" +
			"transaction not sent: a line of its block was rejected (see above), and a transaction is all actions or none; fix the line and run the whole block again\n"
		if r.stderr != want {
			t.Errorf("stderr %q\nwant   %q", r.stderr, want)
		}
	})
	t.Run("LineTooLongIsSkipped", func(t *testing.T) {
		// One bad line among others is a failed command, not a lost
		// connection: the next lines run, and the message names it.
		long := "qom-get path=/" + strings.Repeat("a", shell.MaxPipeLine) + " property=type\n"
		r := run(t, "query-status\n"+long+"qom-get path=/machine property=type", "connect", sock)
		if r.code != ExitQMPError || !strings.Contains(r.stdout, `"status":"running"`) || !strings.HasSuffix(r.stdout, "\n\"none-machine\"\n") ||
			r.stderr != "input line 2 is longer than 16 MiB, the most the shell reads: skipped, nothing sent\n" {
			t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("PrettyStaysJSON", func(t *testing.T) {
		// --pretty on a pipe indents the JSON; events stay JSON too,
		// not the "event STOP at ..." header a person gets.
		r := run(t, "stop\ncont\n", "--pretty", "connect", sock)
		dec := json.NewDecoder(strings.NewReader(r.stdout))
		var events []string
		for {
			var v struct{ Event string }
			if err := dec.Decode(&v); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("stdout %q is not a JSON stream: %v", r.stdout, err)
			}
			events = append(events, v.Event)
		}
		if want := []string{"STOP", "", "RESUME", ""}; r.code != ExitOK || !slices.Equal(events, want) || !strings.Contains(r.stdout, "\n    \"event\": \"STOP\"\n") {
			t.Errorf("exit %d, stdout %q: want the events and replies %q, indented", r.code, r.stdout, want)
		}
	})
	t.Run("UnreadableInputIsNotTheConnection", func(t *testing.T) {
		// Standard input that fails (a directory, an I/O error) is a
		// local failure, 1, not 3: scripts retry on 3.
		var out, errOut qmptest.Buffer
		in := io.MultiReader(strings.NewReader("query-status\n"), iotest.ErrReader(syscall.EISDIR))
		code := Main([]string{"connect", sock}, &IOStreams{In: in, Out: &out, ErrOut: &errOut})
		if code != ExitQMPError || !strings.Contains(out.String(), `"status"`) || errOut.String() != "qmpsh: reading input: is a directory\n" {
			t.Errorf("exit %d, stdout %q, stderr %q; want 1, the status, a line saying input failed", code, out.String(), errOut.String())
		}
	})
	t.Run("HelpSaysQuitLeavesQEMURunning", func(t *testing.T) {
		r := runTTY(t, "help\n", "connect", sock)
		if r.code != 0 || !strings.Contains(r.stdout, "  quit, exit, Ctrl-D    leave the shell; QEMU keeps running\n") {
			t.Fatalf("exit %d, stdout %q", r.code, r.stdout)
		}
	})
	t.Run("QuitLeavesQEMURunning", func(t *testing.T) {
		run(t, "quit\nquery-status\n", "connect", sock).expect(t, ExitOK, "", "")
		r := run(t, "query-status\n", "connect", sock)
		if r.code != 0 || !strings.Contains(r.stdout, `"running"`) {
			t.Fatalf("QEMU gone after the shell's quit: %+v", r)
		}
	})
}

func TestConnectPipedConnectionLost(t *testing.T) {
	sock := qmptest.StartQEMU(t)
	// QEMU quits when asked in raw JSON; the next command cannot run.
	r := run(t, "{\"execute\": \"quit\"}\nquery-status\nquery-status\n", "connect", sock)
	if r.code != ExitConnection {
		t.Fatalf("exit %d, want 3; stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if !strings.HasPrefix(r.stdout, `{"event":"SHUTDOWN"`) && !strings.Contains(r.stdout, `"return":{}`) {
		t.Errorf("stdout %q", r.stdout)
	}
	// The shell waits for QEMU to hang up after its quit: the next
	// command is refused, never sent and cut off, however soon it came.
	lost := regexp.MustCompile(`^not sent: connection lost: .*connection closed by peer\n` +
		`qmpsh: ` + regexp.QuoteMeta(sock) + `: connection lost: .*connection closed by peer\n$`)
	if !lost.MatchString(r.stderr) {
		t.Errorf("stderr %q: want one refusal, the loop stopped, and a last line naming the address", r.stderr)
	}
}

func TestConnectUsage(t *testing.T) {
	t.Setenv("QMP_SOCKET", "")
	r := run(t, "", "connect")
	if r.code != ExitUsage || r.stderrLines[0] != "qmpsh: no address: give ADDR (QEMU's -qmp socket) or set QMP_SOCKET" {
		t.Fatalf("%+v", r)
	}
	if r := run(t, "", "connect", "a", "b"); r.code != ExitUsage {
		t.Fatalf("two addresses: %+v", r)
	}
	sock := filepath.Join(t.TempDir(), "none.sock")
	if r := run(t, "", "connect", sock); r.code != ExitConnection {
		t.Fatalf("no server: %+v", r)
	}
	// -s, as the other commands take the address, is the argument's
	// twin: the same server both ways is one, two are refused.
	if r := run(t, "", "connect", "-s", sock); r.code != ExitConnection || !strings.Contains(r.stderr, sock) {
		t.Fatalf("connect -s: %+v", r)
	}
	if r := run(t, "", "connect", "-s", sock, "unix:"+sock); r.code != ExitConnection {
		t.Fatalf("connect -s X unix:X: %+v", r)
	}
	if r := run(t, "", "connect", "-s", sock, sock+"2"); r.code != ExitUsage || !strings.HasPrefix(r.stderr, "qmpsh: two addresses, ") {
		t.Fatalf("connect -s X Y: %+v", r)
	}
}

func TestAcceptQEMU(t *testing.T) {
	qmptest.RequireQEMU(t, "qemu-system-x86_64")
	dir, err := os.MkdirTemp("", "qmpacc")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "qmp.sock")

	stdinR, stdinW := io.Pipe()
	errR, errW := io.Pipe()
	var out qmptest.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Main([]string{"accept", sock}, &IOStreams{In: stdinR, Out: &out, ErrOut: errW})
		errW.Close()
	}()
	// qmpsh says where QEMU should dial once it listens.
	errLines := bufio.NewScanner(errR)
	if !errLines.Scan() {
		t.Fatal("qmpsh printed nothing")
	}
	if want := "qmpsh: waiting for QEMU; start it with: -qmp unix:" + sock; errLines.Text() != want {
		t.Fatalf("stderr %q, want %q", errLines.Text(), want)
	}
	go io.Copy(io.Discard, errR)
	qmptest.StartQEMUClient(t, sock)
	acceptedAsksType(t, stdinW, done, &out)
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
}

// acceptedAsksType finishes an accept whose QEMU has connected: it types
// one command on stdin, ends it, and checks that qmpsh printed QEMU's
// machine type and exited 0.
func acceptedAsksType(t *testing.T, stdin io.WriteCloser, done <-chan int, out interface{ String() string }) {
	t.Helper()
	go func() { // a qmpsh that failed reads no more: do not block on it
		io.WriteString(stdin, "qom-get path=/machine property=type\n")
		stdin.Close()
	}()
	select {
	case code := <-done:
		if code != 0 || out.String() != "\"none-machine\"\n" {
			t.Fatalf("exit %d, stdout %q", code, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("accept did not finish")
	}
}

func TestAcceptTimeout(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "qmp.sock")
	r := run(t, "", "accept", "--timeout", "50ms", sock)
	if r.code != ExitTimeout {
		t.Fatalf("%+v", r)
	}
}

func TestCompletionAndVersion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		r := run(t, "", "completion", sh)
		if r.code != 0 || !strings.Contains(r.stdout, "qmpsh") {
			t.Errorf("completion %s: exit %d, %d bytes", sh, r.code, len(r.stdout))
		}
	}
	if r := run(t, "", "--version"); r.code != 0 || r.stdout != "qmpsh version "+versionText()+"\n" {
		t.Errorf("--version: %+v", r)
	}
}

// A reply longer than the library's default 10 MiB bound (HMP's memory
// dump here) reaches the shell and exec: a person asked for it, and past
// the bound the session would end.
func TestLongReply(t *testing.T) {
	sock := qmptest.StartQEMU(t, "-M", "pc", "-m", "16", "-S")
	const dump = "hmp xp /1500000xb 0" // about 11 MiB of text
	r := run(t, dump+"\nquery-status\n", "connect", sock)
	if r.code != ExitOK || len(r.stdout) < 10<<20 || !strings.HasSuffix(r.stdout, "\"running\":false}\n") {
		t.Errorf("shell: exit %d, %d bytes of stdout ending %q, stderr %q", r.code, len(r.stdout), r.stdout[max(0, len(r.stdout)-100):], r.stderr)
	}
	r = run(t, "", "exec", "-s", sock, dump)
	if r.code != ExitOK || len(r.stdout) < 10<<20 {
		t.Errorf("exec: exit %d, %d bytes of stdout, stderr %q", r.code, len(r.stdout), r.stderr)
	}
}

// The shell's warnings from its client name the address, as exec's and
// events' do: here a reply to no request, which the client drops.
func TestConnectWarningNamesAddress(t *testing.T) {
	s := qmptest.NewServer(func(c *qmptest.Conn) {
		if c.Greet() != nil {
			return
		}
		stray := true
		c.Answer(func(req *qmptest.Request) bool {
			if req.Execute == "query-status" && stray {
				stray = false
				c.WriteRaw([]byte(`{"return": {}, "id": 424242}` + "\r\n"))
			}
			c.Reply(req.ID, map[string]any{"status": "running", "running": true})
			return true
		})
	})
	t.Cleanup(s.Close)
	r := run(t, "query-status\n", "connect", s.Addr)
	if r.code != ExitOK || !strings.Contains(r.stderr, "qmpsh: warning: "+s.Addr+": dropping a reply with an unknown id") {
		t.Fatalf("exit %d, stderr %q; want the warning naming %s", r.code, r.stderr, s.Addr)
	}
}
