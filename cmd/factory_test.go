package cmd

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// fakeSignals stands for the process's signals: raise delivers one to
// every channel subscribed to it, without blocking, as os/signal does.
type fakeSignals struct {
	mu   sync.Mutex
	subs map[chan<- os.Signal][]os.Signal
}

func (s *fakeSignals) notify(c chan<- os.Signal, sigs ...os.Signal) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.subs == nil {
		s.subs = map[chan<- os.Signal][]os.Signal{}
	}
	s.subs[c] = sigs
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.subs, c)
	}
}

// raise delivers sig and says to how many subscribers.
func (s *fakeSignals) raise(sig os.Signal) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c, sigs := range s.subs {
		for _, want := range sigs {
			if want == sig {
				select {
				case c <- sig:
				default:
				}
				n++
			}
		}
	}
	return n
}

// testFactory is a factory on in, out and errOut, an environment of env
// only, and sigs.
func testFactory(in io.Reader, out, errOut io.Writer, env map[string]string, sigs *fakeSignals) *Factory {
	return &Factory{
		IO:        &IOStreams{In: in, Out: out, ErrOut: errOut},
		Getenv:    func(k string) string { return env[k] },
		Signals:   sigs.notify,
		NewClient: qmp.NewClient,
	}
}

// The run functions read the environment through the factory only: an
// address in the process's own $QMP_SOCKET would fail.
func TestRunTakesEnvironmentFromFactory(t *testing.T) {
	sock := qmptest.StartQEMU(t)
	t.Setenv("QMP_SOCKET", filepath.Join(t.TempDir(), "not-this.sock"))
	env := map[string]string{"QMP_SOCKET": sock}
	global := func(f *Factory) *GlobalOptions {
		return &GlobalOptions{Factory: f, Timeout: DefaultTimeout, Color: "never"}
	}

	t.Run("Exec", func(t *testing.T) {
		var out, errOut qmptest.Buffer
		f := testFactory(strings.NewReader(""), &out, &errOut, env, &fakeSignals{})
		opts := &ExecOptions{GlobalOptions: global(f), Args: []string{"query-status"}, Parallel: DefaultParallel}
		if err := execRun(context.Background(), opts); err != nil {
			t.Fatalf("execRun: %v; stderr %q", err, errOut.String())
		}
		if !strings.HasPrefix(out.String(), `{"status":"running",`) {
			t.Errorf("stdout %q, want query-status's return", out.String())
		}
	})

	t.Run("Connect", func(t *testing.T) {
		var out, errOut qmptest.Buffer
		f := testFactory(strings.NewReader("qom-get path=/machine property=type\n"), &out, &errOut, env, &fakeSignals{})
		if err := connectRun(context.Background(), &ShellOptions{GlobalOptions: global(f)}); err != nil {
			t.Fatalf("connectRun: %v; stderr %q", err, errOut.String())
		}
		if out.String() != "\"none-machine\"\n" || errOut.String() != "" {
			t.Errorf("stdout %q, stderr %q", out.String(), errOut.String())
		}
	})

	// accept without an address listens in a private directory under
	// the factory's $XDG_RUNTIME_DIR, and the factory's Ctrl-C ends the
	// wait for QEMU, removing the directory.
	t.Run("AcceptRuntimeDirAndInterrupt", func(t *testing.T) {
		runtimeDir := t.TempDir()
		sigs := &fakeSignals{}
		errR, errW := io.Pipe()
		var out qmptest.Buffer
		f := testFactory(strings.NewReader(""), &out, errW,
			map[string]string{"XDG_RUNTIME_DIR": runtimeDir}, sigs)
		done := make(chan error, 1)
		go func() {
			done <- acceptRun(context.Background(), &ShellOptions{GlobalOptions: global(f)})
			errW.Close()
		}()
		errLines := bufio.NewScanner(errR)
		if !errLines.Scan() {
			t.Fatal("accept printed nothing")
		}
		prefix := "qmpsh: waiting for QEMU; start it with: -qmp unix:" + runtimeDir + string(filepath.Separator) + "qmpsh-"
		if !strings.HasPrefix(errLines.Text(), prefix) {
			t.Fatalf("stderr %q, want a socket under %s", errLines.Text(), runtimeDir)
		}
		go io.Copy(io.Discard, errR)
		if n := sigs.raise(os.Interrupt); n != 1 {
			t.Fatalf("Ctrl-C reached %d subscribers, want 1 (accept's wait)", n)
		}
		var err error
		select {
		case err = <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("Ctrl-C did not end accept's wait")
		}
		if !errors.Is(err, context.Canceled) || exitCode(err) != ExitConnection {
			t.Errorf("acceptRun = %v (exit %d), want the wait cancelled (exit %d)", err, exitCode(err), ExitConnection)
		}
		if entries, _ := os.ReadDir(runtimeDir); len(entries) != 0 {
			t.Errorf("left behind in $XDG_RUNTIME_DIR: %v", entries)
		}
	})
}
