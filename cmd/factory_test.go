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
	"syscall"
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
		if !errors.Is(err, context.Canceled) || exitCode(err) != ExitInterrupted {
			t.Errorf("acceptRun = %v (exit %d), want the wait cancelled (exit %d)", err, exitCode(err), ExitInterrupted)
		}
		if entries, _ := os.ReadDir(runtimeDir); len(entries) != 0 {
			t.Errorf("left behind in $XDG_RUNTIME_DIR: %v", entries)
		}
	})
}

// Each command fills its options from its flags and arguments, and hands
// them to the run function it was built with.
func TestCommandsFillOptions(t *testing.T) {
	g := &GlobalOptions{Factory: testFactory(strings.NewReader(""), io.Discard, io.Discard, nil, &fakeSignals{})}
	t.Run("Wrap", func(t *testing.T) {
		var got *WrapOptions
		c := newWrapCmd(g, func(_ context.Context, o *WrapOptions) error { got = o; return nil })
		c.SetArgs([]string{"-H", "--qemu-log", "vm.log", "qemu-system-x86_64", "-M", "none", "-H"})
		if err := c.Execute(); err != nil {
			t.Fatal(err)
		}
		if got == nil || strings.Join(got.QEMU, " ") != "qemu-system-x86_64 -M none -H" || got.QEMULog != "vm.log" || !got.HMP {
			t.Errorf("options %+v: want QEMU's command line from its first word on, --qemu-log and -H before it", got)
		}
	})
	t.Run("WrapDaemonize", func(t *testing.T) {
		c := newWrapCmd(g, func(context.Context, *WrapOptions) error {
			t.Error("run with a QEMU that daemonizes")
			return nil
		})
		c.SetArgs([]string{"qemu-system-x86_64", "-daemonize"})
		c.SetErr(io.Discard)
		c.SetOut(io.Discard)
		if err := c.Execute(); exitCode(err) != ExitUsage {
			t.Errorf("Execute() = %v, want a usage error", err)
		}
	})
	t.Run("Connect", func(t *testing.T) {
		var got *ShellOptions
		c := newConnectCmd(g, func(_ context.Context, o *ShellOptions) error { got = o; return nil })
		c.SetArgs([]string{"--reconnect", "/run/vm.sock"})
		if err := c.Execute(); err != nil {
			t.Fatal(err)
		}
		if got == nil || got.Addr != "/run/vm.sock" || !got.Reconnect || got.HMP {
			t.Errorf("options %+v", got)
		}
	})
}

// SIGTERM and SIGHUP end wrap's session as the end of input does, and on
// a pipe so does Ctrl-C: QEMU is asked to quit, and the exit status is
// the shell's.
func TestWrapSignalEndsSession(t *testing.T) {
	bin := qmptest.RequireQEMU(t, "qemu-system-x86_64")
	for _, sig := range []os.Signal{syscall.SIGTERM, syscall.SIGHUP, os.Interrupt} {
		t.Run(sig.String(), func(t *testing.T) {
			sigs := &fakeSignals{}
			stdinR, stdinW := io.Pipe()
			defer stdinW.Close()
			outR, outW := io.Pipe()
			var errOut qmptest.Buffer
			f := testFactory(stdinR, outW, &errOut, map[string]string{"XDG_RUNTIME_DIR": t.TempDir()}, sigs)
			opts := &WrapOptions{
				ShellOptions: ShellOptions{GlobalOptions: &GlobalOptions{Factory: f, Timeout: DefaultTimeout, Color: "never"}},
				QEMU:         []string{bin, "-M", "none", "-nodefaults", "-display", "none"},
				QEMULog:      filepath.Join(t.TempDir(), "qemu.log"),
			}
			done := make(chan error, 1)
			go func() {
				done <- wrapRun(context.Background(), opts)
				outW.Close()
			}()
			// A result printed: the session runs.
			io.WriteString(stdinW, "query-status\n")
			out := bufio.NewScanner(outR)
			if !out.Scan() || !strings.HasPrefix(out.Text(), `{"status":"running",`) {
				t.Fatalf("stdout %q, stderr %q", out.Text(), errOut.String())
			}
			go io.Copy(io.Discard, outR)
			if n := sigs.raise(sig); n == 0 {
				t.Fatalf("nothing listens for %v", sig)
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatalf("%v did not end the session", sig)
			}
			if err != nil || strings.Contains(errOut.String(), "killing") {
				t.Errorf("wrapRun = %v, stderr %q; want QEMU to quit when asked, and the shell's status", err, errOut.String())
			}
		})
	}
}
