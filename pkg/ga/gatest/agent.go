package gatest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// startTimeout bounds the wait for a new agent's first answer; it only
// matters when the agent hangs, and must be generous on a loaded machine.
const startTimeout = 60 * time.Second

// AgentBinary returns the path of qemu-ga: on PATH, else in /usr/sbin,
// where Debian puts it (and which is not on every user's PATH), or "".
func AgentBinary() string {
	if p, err := exec.LookPath("qemu-ga"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/qemu-ga", "/usr/bin/qemu-ga"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// RequireAgent returns qemu-ga's path, or skips the test (fails it under
// QMPSH_REQUIRE_QEMU=1, as qmptest.RequireQEMU does) when it is missing.
func RequireAgent(t testing.TB) string {
	t.Helper()
	if p := AgentBinary(); p != "" {
		return p
	}
	return qmptest.RequireQEMU(t, "qemu-ga") // skips or fails
}

// Agent is a qemu-ga process serving a UNIX socket.
type Agent struct {
	// Path is the agent's socket.
	Path string
	// Dir is a temporary directory for the test's files, removed with
	// the agent.
	Dir string

	bin   string
	state string
	ln    *os.File // the listening socket, kept across restarts

	mu   sync.Mutex
	cmd  *exec.Cmd
	out  *qmptest.Buffer
	done chan struct{} // closed when cmd has been reaped
}

// StartAgent starts qemu-ga on a socket in a new temporary directory and
// returns once it answers. It is stopped, and the directory removed, when
// the test ends.
func StartAgent(t testing.TB) *Agent {
	t.Helper()
	bin := RequireAgent(t)
	a, err := LaunchAgent(bin)
	if err != nil {
		t.Fatalf("gatest: %v", err)
	}
	t.Cleanup(func() {
		out := a.Output()
		a.Stop()
		if t.Failed() && out != "" {
			t.Logf("output of qemu-ga:\n%s", out)
		}
	})
	return a
}

// LaunchAgent is StartAgent for programs that are not tests (the
// benchmark driver); the caller must call Stop.
//
// The socket is created here and handed to qemu-ga as fd 3 by systemd's
// socket activation protocol (LISTEN_FDS, LISTEN_PID), so it listens
// before the agent starts: a client's connection waits in the kernel's
// backlog until the agent accepts it, with nothing to poll for, and the
// socket outlives the agent, so Restart can start another on it.
func LaunchAgent(bin string) (*Agent, error) {
	dir, err := os.MkdirTemp("", "qga")
	if err == nil && len(dir) > 80 { // sun_path is short
		os.RemoveAll(dir)
		dir, err = os.MkdirTemp("/tmp", "qga")
	}
	if err != nil {
		return nil, err
	}
	a := &Agent{Path: filepath.Join(dir, "qga.sock"), Dir: filepath.Join(dir, "files"), bin: bin, state: filepath.Join(dir, "state")}
	for _, d := range []string{a.Dir, a.state} {
		if err := os.Mkdir(d, 0o700); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: a.Path, Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	ln.SetUnlinkOnClose(false)
	a.ln, err = ln.File() // a blocking dup is what qemu-ga's GLib channel expects to get
	ln.Close()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := a.start(); err != nil {
		a.Stop()
		return nil, err
	}
	return a, nil
}

func (a *Agent) start() error {
	// LISTEN_PID must be the agent's own pid, which only the shell that
	// execs it knows.
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"`,
		a.bin, "-m", "unix-listen", "-p", a.Path, "-t", a.state)
	out := new(qmptest.Buffer)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.ExtraFiles = []*os.File{a.ln}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting qemu-ga: %w", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	a.mu.Lock()
	a.cmd, a.out, a.done = cmd, out, done
	a.mu.Unlock()
	if err := probe(a.Path); err != nil {
		return fmt.Errorf("qemu-ga did not answer on %s: %v\n%s", a.Path, err, out.String())
	}
	return nil
}

// probe synchronises with the agent by hand and hangs up, which proves
// that it serves clients. The agent then takes the next one.
func probe(path string) error {
	c, err := net.DialTimeout("unix", path, startTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(startTimeout))
	if _, err := c.Write([]byte("\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":4242}}\n")); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if i := bytes.LastIndexByte(line, 0xff); i >= 0 && bytes.Contains(line[i:], []byte(`"return": 4242`)) {
			return nil
		}
	}
}

// Restart kills the agent and starts another on the same socket, as a
// guest's agent restarts: a connected client sees its connection end.
func (a *Agent) Restart() error {
	a.kill()
	return a.start()
}

// Kill kills the agent and waits for it to be gone, leaving the socket
// listening with nobody to answer.
func (a *Agent) Kill() { a.kill() }

func (a *Agent) kill() {
	a.mu.Lock()
	cmd, done := a.cmd, a.done
	a.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// Pid returns the agent's process id.
func (a *Agent) Pid() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cmd.Process.Pid
}

// Output returns what the agent printed.
func (a *Agent) Output() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.out == nil {
		return ""
	}
	return a.out.String()
}

// Stop kills the agent and removes its directory.
func (a *Agent) Stop() {
	a.kill()
	if a.ln != nil {
		a.ln.Close()
	}
	os.RemoveAll(filepath.Dir(a.Path))
}

// OpenFiles counts the file descriptors the agent has open on files in
// dir, from /proc: how a test checks that a copy closed its guest file.
func (a *Agent) OpenFiles(dir string) (int, error) {
	fdDir := "/proc/" + strconv.Itoa(a.Pid()) + "/fd"
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(fdDir, e.Name()))
		if err == nil && filepath.Dir(target) == dir {
			n++
		}
	}
	return n, nil
}
