package qmptest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestStartQEMU(t *testing.T) {
	addr := StartQEMU(t)
	rc := dial(t, addr)
	rc.negotiate()
	rc.send(`{"execute": "query-status", "id": 1}`)
	m := rc.msg()
	jsonEqual(t, m["return"], `{"status": "running", "singlestep": false, "running": true}`)
	jsonEqual(t, m["id"], "1")
}

func TestStartQEMUExtraArgs(t *testing.T) {
	addr := StartQEMU(t, "-name", "qmptest-guest")
	rc := dial(t, addr)
	rc.negotiate()
	rc.send(`{"execute": "query-name"}`)
	jsonEqual(t, rc.msg()["return"], `{"name": "qmptest-guest"}`)
}

// TestStartQEMUServesQueuedClients checks the property the launchers rely
// on: a connection made while another client holds the monitor waits and
// is greeted once that client leaves.
func TestStartQEMUServesQueuedClients(t *testing.T) {
	addr := StartQEMU(t)
	first := dial(t, addr)
	first.negotiate()
	second := dial(t, addr)
	first.c.Close()
	second.negotiate()
}

func TestStartStorageDaemon(t *testing.T) {
	addr := StartStorageDaemon(t)
	rc := dial(t, addr)
	rc.negotiate()
	// The storage daemon has no run state, hence no query-status.
	rc.send(`{"execute": "query-version", "id": "v"}`)
	m := rc.msg()
	jsonEqual(t, m["id"], `"v"`)
	var v struct{ QEMU struct{ Major int } }
	if err := json.Unmarshal(m["return"], &v); err != nil || v.QEMU.Major == 0 {
		t.Fatalf("query-version: %s (%v)", m["return"], err)
	}
}

func TestStartQEMUClient(t *testing.T) {
	dir, err := shortTempDir("qmpc")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "c.sock"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := StartQEMUClient(t, ln.Addr().String())
	ln.SetDeadline(time.Now().Add(20 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		t.Fatalf("QEMU did not connect: %v", err)
	}
	rc := &rawClient{t: t, c: c, r: bufio.NewReader(c)}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	rc.negotiate()
	rc.send(`{"execute": "query-status"}`)
	jsonEqual(t, rc.msg()["return"], `{"status": "running", "singlestep": false, "running": true}`)

	// The test may end QEMU itself and wait for it; cleanup copes.
	rc.send(`{"execute": "quit"}`)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("QEMU after quit: %v", err)
	}
}

// fakeTB records what a helper does to its test, so that failure and skip
// paths can be tested without failing the real test.
type fakeTB struct {
	testing.TB
	mu       sync.Mutex
	failed   bool
	skipped  bool
	msgs     []string
	cleanups []func()
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.failed = true
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeTB) Skipf(format string, args ...any) {
	f.mu.Lock()
	f.skipped = true
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeTB) Logf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

// run calls fn as a test body would be called, then the cleanups.
func (f *fakeTB) run(fn func(testing.TB)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

func TestRequireQEMUMissing(t *testing.T) {
	t.Setenv(RequireQEMUEnv, "")
	f := &fakeTB{TB: t}
	f.run(func(tb testing.TB) { RequireQEMU(tb, "qemu-no-such-binary") })
	if !f.skipped || f.failed || !strings.Contains(f.msgs[0], "qemu-no-such-binary is not on PATH") {
		t.Fatalf("skipped=%v failed=%v msgs=%q", f.skipped, f.failed, f.msgs)
	}

	t.Setenv(RequireQEMUEnv, "1")
	f = &fakeTB{TB: t}
	f.run(func(tb testing.TB) { RequireQEMU(tb, "qemu-no-such-binary") })
	if f.skipped || !f.failed || !strings.Contains(f.msgs[0], RequireQEMUEnv) {
		t.Fatalf("skipped=%v failed=%v msgs=%q", f.skipped, f.failed, f.msgs)
	}
}

func TestStartQEMUFailureShowsOutput(t *testing.T) {
	RequireQEMU(t, "qemu-system-x86_64")
	f := &fakeTB{TB: t}
	start := time.Now()
	f.run(func(tb testing.TB) { StartQEMU(tb, "-no-such-option") })
	if !f.failed || !strings.Contains(f.msgs[0], "-no-such-option") {
		t.Fatalf("failed=%v msgs=%q", f.failed, f.msgs)
	}
	// QEMU's exit must end the wait for its greeting at once.
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("failure took %v", d)
	}
	t.Logf("reported: %s", f.msgs[0])
}

func TestStartStorageDaemonFailureShowsOutput(t *testing.T) {
	RequireQEMU(t, "qemu-storage-daemon")
	f := &fakeTB{TB: t}
	f.run(func(tb testing.TB) { StartStorageDaemon(tb, "--blockdev", "driver=nonesuch,node-name=x") })
	if !f.failed || !strings.Contains(f.msgs[0], "nonesuch") {
		t.Fatalf("failed=%v msgs=%q", f.failed, f.msgs)
	}
}

// TestPassedSocketStaysNonblocking guards against os/exec's switching the
// inherited listening socket to blocking mode, which makes QEMU hang now
// and then (see nonblockingFile).
func TestPassedSocketStaysNonblocking(t *testing.T) {
	if _, err := os.Stat("/proc/self/fdinfo"); err != nil {
		t.Skip("no /proc/self/fdinfo to inspect")
	}
	dir, err := shortTempDir("qmpnb")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "s"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := nonblockingFile(ln)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("cat", "/proc/self/fdinfo/3")
	cmd.ExtraFiles = []*os.File{f}
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "flags:"); ok {
			flags, err := strconv.ParseUint(strings.TrimSpace(v), 8, 64)
			if err != nil {
				t.Fatal(err)
			}
			if flags&syscall.O_NONBLOCK == 0 {
				t.Fatalf("the child's fd 3 is blocking (flags %o)", flags)
			}
			return
		}
	}
	t.Fatalf("no flags in fdinfo:\n%s", out)
}
