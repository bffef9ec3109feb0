package cmd

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unicode/utf8"

	"github.com/qmpsh/qmpsh/pkg/ga/gatest"
	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// fullWriter is standard output on a full disk: every write fails.
type fullWriter struct{ writes int }

func (w *fullWriter) Write([]byte) (int, error) {
	w.writes++
	return 0, &os.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.ENOSPC}
}

// runFull runs qmpsh with args and stdin as run does, but with a
// standard output every write to which fails.
func runFull(t *testing.T, stdin string, args ...string) (result, *fullWriter) {
	t.Helper()
	var errOut qmptest.Buffer
	out := &fullWriter{}
	code := Main(args, &IOStreams{In: strings.NewReader(stdin), Out: out, ErrOut: &errOut})
	return result{code: code, stderr: errOut.String()}, out
}

const outputLost = "qmpsh: writing standard output failed, so it is incomplete: no space left on device\n"

// Results that cannot be written (a full disk behind `> out.json`) are a
// failure, exit 1, said on stderr, not a silent success; and nothing
// more is run once they fail.
func TestStdoutWriteFails(t *testing.T) {
	sock := qmptest.StartQEMU(t)

	t.Run("Exec", func(t *testing.T) {
		r, out := runFull(t, "", "exec", "-s", sock, "query-status")
		if r.code != ExitQMPError || r.stderr != outputLost || out.writes != 1 {
			t.Errorf("exit %d, stderr %q, %d writes; want exit 1, stderr %q, 1 write", r.code, r.stderr, out.writes, outputLost)
		}
	})
	t.Run("FanOut", func(t *testing.T) {
		// 1 whatever the targets did, which their lost lines would
		// have said: once the output failed, the run was stopped, and
		// a status that depended on which target it stopped first
		// would depend on timing.
		second := qmptest.StartQEMU(t)
		for _, other := range []string{second, filepath.Join(t.TempDir(), "none.sock")} {
			r, _ := runFull(t, "", "exec", "--parallel", "1", "-s", sock, "-s", other, "query-status")
			if r.code != ExitQMPError || !strings.HasSuffix(r.stderr, outputLost) {
				t.Errorf("exit %d, stderr %q; want exit 1 and %q", r.code, r.stderr, outputLost)
			}
		}
	})
	t.Run("CobraWrites", func(t *testing.T) {
		// What cobra writes itself fails the same way, not as a
		// usage error with a pointer to --help.
		for _, args := range [][]string{{"--version"}, {"completion", "bash"}} {
			r, _ := runFull(t, "", args...)
			if r.code != ExitQMPError || r.stderr != outputLost {
				t.Errorf("%q: exit %d, stderr %q; want exit 1, stderr %q", args, r.code, r.stderr, outputLost)
			}
		}
	})
	t.Run("Schema", func(t *testing.T) {
		r, _ := runFull(t, "", "schema", "-s", sock, "query-status")
		if r.code != ExitQMPError || r.stderr != outputLost {
			t.Errorf("exit %d, stderr %q; want exit 1, stderr %q", r.code, r.stderr, outputLost)
		}
	})
	t.Run("ShellStops", func(t *testing.T) {
		// The first result is lost: the next commands are not sent.
		r, out := runFull(t, "query-status\nquery-name\nquery-version\n", "-v", "connect", sock)
		if r.code != ExitQMPError || !strings.HasSuffix(r.stderr, outputLost) || out.writes != 1 {
			t.Errorf("exit %d, stderr %q, %d writes; want exit 1, %q at the end, 1 write", r.code, r.stderr, out.writes, outputLost)
		}
		if strings.Contains(r.stderr, "query-name") || strings.Contains(r.stderr, "query-version") {
			t.Errorf("commands sent after the output failed:\n%s", r.stderr)
		}
	})
	t.Run("Log", func(t *testing.T) {
		if _, err := os.Stat("/dev/full"); err != nil {
			t.Skip("no /dev/full")
		}
		r := run(t, "", "--log", "/dev/full", "exec", "-s", sock, "query-status")
		want := "qmpsh: writing --log /dev/full failed, so it is incomplete: no space left on device\n"
		if r.code != ExitQMPError || !strings.Contains(r.stdout, `"status"`) || r.stderr != want {
			t.Errorf("exit %d, stdout %q, stderr %q; want exit 1, the status, stderr %q", r.code, r.stdout, r.stderr, want)
		}
	})
}

// events stops at the first event it cannot write, rather than read
// events forever into nowhere.
func TestEventsStdoutWriteFails(t *testing.T) {
	sock, second := startQEMUTwoMonitors(t)
	var errOut qmptest.Buffer
	out := &fullWriter{}
	done := make(chan int, 1)
	go func() {
		done <- Main([]string{"-v", "events", "-s", sock}, &IOStreams{In: strings.NewReader(""), Out: out, ErrOut: &errOut})
	}()
	errOut.WaitFor(t, `<-- {"return": {}}`, 1) // negotiated: events are listened for
	run(t, "", "exec", "-s", second, "stop").mustExit(t, ExitOK)
	code := <-done
	run(t, "", "exec", "-s", second, "cont").mustExit(t, ExitOK)
	if code != ExitQMPError || !strings.HasSuffix(errOut.String(), outputLost) || out.writes != 1 {
		t.Errorf("exit %d, %d writes, stderr %q; want exit 1, 1 write, %q at the end", code, out.writes, errOut.String(), outputLost)
	}
}

// A closed pipe is not reported: the commands that catch SIGPIPE say
// so themselves (141, quietly), and the others die of it.
func TestCheckedWriterPipe(t *testing.T) {
	var failed []error
	w := &checkedWriter{w: errWriter{syscall.EPIPE}, name: "standard output", fail: func(err error) { failed = append(failed, err) }}
	if _, err := w.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("write: %v, want EPIPE", err)
	}
	var o outputs
	o.add(w)
	var msg strings.Builder
	if _, any := o.report(&msg); any || msg.Len() != 0 || len(failed) != 0 {
		t.Errorf("a closed pipe was reported: %q, fail called with %v", msg.String(), failed)
	}
}

type errWriter struct{ err error }

func (e errWriter) Write([]byte) (int, error) { return 0, e.err }

// Bytes that are not UTF-8 in a server's strings reach standard output
// as \ufffd, so that what qmpsh prints is JSON a program can read.
func TestInvalidUTF8FromServer(t *testing.T) {
	s := qmptest.NewServer(func(c *qmptest.Conn) {
		c.Greet()
		c.Answer(func(req *qmptest.Request) bool {
			id := ""
			if req.ID != nil {
				id = `, "id": ` + string(req.ID)
			}
			return c.WriteRaw([]byte("{\"return\": {\"name\": \"a\xff\xfeb\"}"+id+"}\r\n")) == nil
		})
	})
	defer s.Close()
	for _, args := range [][]string{
		{"exec", "-s", s.Addr, "query-name"},
		{"exec", "-s", s.Addr, "-s", s.Addr + "x", "query-name"}, // fan-out lines
	} {
		r := run(t, "", args...)
		if !utf8.ValidString(r.stdout) || !strings.Contains(r.stdout, `"a\ufffd\ufffdb"`) {
			t.Errorf("%v: stdout %q (exit %d, stderr %q); want valid UTF-8 with \\ufffd for each bad byte", args, r.stdout, r.code, r.stderr)
		}
	}
}

// A raw line QEMU's parser would not take as one message (Go's would) is
// a syntax error: exec sends nothing (exit 2, before connecting), and
// the piped shell skips it and runs the next lines.
func TestRawLineQEMURefuses(t *testing.T) {
	lines := []string{
		`{"execute":"query-status","arguments":{"a":0e5}}`,
		`{"execute":"query-status","arguments":{"a":1,"a":2}}`,
		"{\"execute\":\"query-status\xff\"}",
		`{"execute":"query-status\ud800"}`,
	}
	for _, l := range lines {
		r := run(t, "", "exec", "-s", filepath.Join(t.TempDir(), "none.sock"), l)
		if r.code != ExitUsage || !strings.Contains(r.stderr, "QEMU would refuse this message: JSON parse error, ") {
			t.Errorf("exec %.50q: exit %d, stderr %q; want 2 and QEMU's reason", l, r.code, r.stderr)
		}
	}
	sock := qmptest.StartQEMU(t)
	r := run(t, lines[0]+"\nquery-status\n", "connect", sock)
	if r.code != ExitQMPError || !strings.Contains(r.stdout, `"status":"running"`) || !strings.Contains(r.stderr, "QEMU would refuse this message") {
		t.Errorf("shell: exit %d, stdout %q, stderr %q; want 1, the next line run", r.code, r.stdout, r.stderr)
	}
}

// The piped shell runs no line once an event could not be printed, even
// one read after the event came.
func TestShellStopsAfterEventWriteFails(t *testing.T) {
	sock, second := startQEMUTwoMonitors(t)
	inR, inW := io.Pipe()
	var errOut qmptest.Buffer
	out := &fullWriter{}
	stopped := make(chan struct{})
	testHookOutputFailed = func() { close(stopped) }
	defer func() { testHookOutputFailed = nil }()
	done := make(chan int, 1)
	go func() { done <- Main([]string{"-v", "connect", sock}, &IOStreams{In: inR, Out: out, ErrOut: &errOut}) }()
	errOut.WaitFor(t, `<-- {"return": {}}`, 1) // negotiated: events are printed
	run(t, "", "exec", "-s", second, "stop").mustExit(t, ExitOK)
	<-stopped // the STOP event's line failed, and the run was stopped
	io.WriteString(inW, "cont\n")
	inW.Close()
	code := <-done
	if code != ExitQMPError || strings.Contains(errOut.String(), `"execute":"cont"`) {
		t.Errorf("exit %d, stderr %q; want 1 and cont not sent", code, errOut.String())
	}
	r := run(t, "", "exec", "-s", second, "query-status")
	if !strings.Contains(r.stdout, `"paused"`) {
		t.Errorf("after: %q, want the VM still paused", r.stdout)
	}
}

// Events from many targets reach stdout as valid UTF-8 too.
func TestEventsFanOutInvalidUTF8(t *testing.T) {
	handler := func(c *qmptest.Conn) {
		c.Greet()
		for {
			req, err := c.ReadRequest()
			if err != nil {
				return
			}
			switch req.Command() {
			case "qmp_capabilities":
				c.Reply(req.ID, nil)
				c.WriteRaw([]byte("{\"event\": \"X\", \"data\": {\"name\": \"a\xff\xfeb\"}, \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}\r\n"))
			default:
				c.ReplyError(req.ID, "CommandNotFound", "no")
			}
		}
	}
	a, b := qmptest.NewServer(handler), qmptest.NewServer(handler)
	defer a.Close()
	defer b.Close()
	r := run(t, "", "events", "-s", a.Addr, "-s", b.Addr, "--count", "1")
	if !utf8.ValidString(r.stdout) || strings.Count(r.stdout, `a\ufffd\ufffdb`) != 2 {
		t.Errorf("stdout %q (exit %d, stderr %q); want two events, valid UTF-8", r.stdout, r.code, r.stderr)
	}
}

// A command that names its failed stdout itself (ga cp to -) is not told
// of twice.
func TestStdoutFailureSaidOnce(t *testing.T) {
	a := gatest.StartAgent(t)
	f := filepath.Join(t.TempDir(), "f.txt")
	if err := os.WriteFile(f, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, _ := runFull(t, "", "ga", "cp", "-s", a.Path, ":"+f, "-")
	if r.code != ExitQMPError || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "writing standard output") {
		t.Errorf("exit %d, stderr %q; want 1 and one line naming standard output", r.code, r.stderr)
	}
}
