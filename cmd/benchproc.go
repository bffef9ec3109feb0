//go:build ignore

// Benchproc compares, as whole processes, `qmpsh exec query-status` with
// the least a Go program can do for the same result (testdata/rawqmp:
// greeting, qmp_capabilities, query-status, one line read per message),
// and reports the peak RSS of qmpsh exec and of an idle shell. It is what
// `make bench` runs after pkg/qmp/benchratio.go:
//
//	go run ./cmd/benchproc.go [-runs 200] [-warmup 10] [-rssruns 10] [-target 1.5] [-idle 200ms] [-qemu BIN] [-strict]
//
// Both programs are built into a temporary directory and run against one
// throwaway QEMU (-M none), one process at a time, since a QMP monitor
// serves one client at a time. The runs are interleaved, in pairs whose
// order alternates (raw, qmpsh, qmpsh, raw, ...), so that both programs
// see the same machine and each follows the other as often. The wall time
// of a run is from starting the process to having reaped it.
//
// Peak RSS is VmHWM, the high-water mark of the process's memory, as
// /proc/PID/status shows it. For qmpsh exec and the raw program it is
// read at exit, in -rssruns further runs of each, traced with ptrace to
// stop them at exit while their memory still exists; tracing slows a
// run, so these runs are not timed. (wait4's ru_maxrss would not do: Linux
// counts in it the peak of the memory a process replaced at exec, which,
// as Go starts processes with vfork, is this driver's.)
//
// The idle shell is `qmpsh connect SOCK` connected and waiting for input:
// once with standard input a pipe (run with -v, connected when the reply
// to qmp_capabilities shows; then also after one query-status, since the
// shell fetches QEMU's schema for its first command), once on a
// pseudo-terminal (connected when the prompt shows). Its peak RSS is
// VmHWM in /proc/PID/status, read after -idle of waiting.
//
// The exit status is 1 when something fails to run, or, with -strict,
// when the ratio misses its target.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
)

const (
	module = "github.com/qmpsh/qmpsh"
	// runTimeout bounds each process and each wait; a run takes
	// milliseconds, the bound only matters when something hangs.
	runTimeout = 30 * time.Second
)

func main() {
	runs := flag.Int("runs", 200, "measured runs of each program")
	warmup := flag.Int("warmup", 10, "unmeasured runs of each program first")
	target := flag.Float64("target", 1.5, "most qmpsh/raw ratio of the median wall times that meets the target")
	idle := flag.Duration("idle", 200*time.Millisecond, "how long the idle shell waits before its RSS is read")
	qemuBin := flag.String("qemu", "qemu-system-x86_64", "the QEMU binary")
	rssRuns := flag.Int("rssruns", 10, "runs of each program, traced, for the peak RSS at exit")
	strict := flag.Bool("strict", false, "exit 1 when the ratio misses its target")
	flag.Parse()
	if *runs < 1 || *warmup < 0 || *rssRuns < 1 {
		fail(errors.New("-runs and -rssruns must be at least 1, -warmup not negative"))
	}

	// A short directory: a UNIX socket path has at most 107 bytes.
	dir, err := os.MkdirTemp("", "benchproc")
	check(err)
	atExit(func() { os.RemoveAll(dir) })
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		fail(fmt.Errorf("%v", s))
	}()

	// Build both, from the module's root wherever we are run from.
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module).Output()
	check(err)
	qmpsh, raw := filepath.Join(dir, "qmpsh"), filepath.Join(dir, "rawqmp")
	for _, b := range [][2]string{{qmpsh, "."}, {raw, "./testdata/rawqmp"}} {
		build := exec.Command("go", "build", "-o", b[0], b[1])
		build.Dir = strings.TrimSpace(string(root))
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		check(build.Run())
	}

	sock := startQEMU(*qemuBin, dir)
	env := childEnv(dir)
	start := time.Now()
	load := loadavg()

	progs := []*prog{
		{name: "raw Go: testdata/rawqmp SOCK", bin: raw, args: []string{sock}},
		{name: "qmpsh exec -s SOCK query-status", bin: qmpsh, args: []string{"exec", "-s", sock, "query-status"}},
	}
	for i := range *warmup + *runs {
		// Alternate which goes first, so that each follows the other
		// as often.
		order := progs
		if i%2 == 1 {
			order = []*prog{progs[1], progs[0]}
		}
		for _, p := range order {
			wall, err := p.run(env)
			check(err)
			if i >= *warmup {
				p.wall = append(p.wall, wall)
			}
		}
	}
	var rssErr error
	for i := 0; i < *rssRuns && rssErr == nil; i++ {
		for _, p := range progs {
			var hwm float64
			if hwm, rssErr = p.peakRSS(env); rssErr != nil {
				break
			}
			p.rss = append(p.rss, hwm)
		}
	}
	if rssErr != nil && !errors.Is(rssErr, errNoPtrace) {
		fail(rssErr)
	}

	pipeHWM, pipeAfterHWM, err := idlePipe(qmpsh, sock, env, *idle)
	check(err)
	ptyHWM, ptyErr := idlePty(qmpsh, sock, env, *idle)
	if ptyErr != nil && !errors.Is(ptyErr, pty.ErrUnsupported) {
		fail(ptyErr)
	}
	load = load + " → " + loadavg()

	w := os.Stdout
	fmt.Fprintf(w, "\nwhole process, %d runs of each, interleaved, on one QEMU (-M none); wall time from start to reaped\n", *runs)
	fmt.Fprintf(w, "%s, %d CPUs (GOMAXPROCS %s), %s/%s, %s (CGO_ENABLED=%s), %s, %s; load average %s\n",
		cpuModel(), runtime.NumCPU(), gomaxprocs(), runtime.GOOS, runtime.GOARCH, goVersion(), goEnv("CGO_ENABLED"),
		qemuVersion(*qemuBin), start.Format("2006-01-02"), load)
	fmt.Fprintf(w, "peak RSS: VmHWM, of exec at exit (%d traced runs of each), of the shells after %v idle\n\n", *rssRuns, *idle)
	fmt.Fprintf(w, "| %-36s | %11s | %9s | %9s | %-21s | %9s |\n",
		"process", "wall median", "wall p90", "wall min", "peak RSS median (max)", "binary")
	fmt.Fprintf(w, "|%s|%s|%s|%s|%s|%s|\n", dashes(38), dashes(13), dashes(11), dashes(11), dashes(23), dashes(11))
	for _, p := range progs {
		rss := "n/a: " + strings.TrimPrefix(fmt.Sprint(rssErr), errNoPtrace.Error()+": ")
		if rssErr == nil {
			rss = fmt.Sprintf("%s (%s)", mib(median(p.rss)), mib(slices.Max(p.rss)))
		}
		fmt.Fprintf(w, "| %-36s | %11s | %9s | %9s | %-21s | %9s |\n", p.name,
			ms(median(p.wall)), ms(percentile(p.wall, 90)), ms(slices.Min(p.wall)), rss, mib(fileSize(p.bin)))
	}
	fmt.Fprintf(w, "| %-36s | %11s | %9s | %9s | %-21s | %9s |\n", "qmpsh connect SOCK, idle, stdin pipe", "", "", "", mib(pipeHWM), "")
	fmt.Fprintf(w, "| %-36s | %11s | %9s | %9s | %-21s | %9s |\n", "  the same after one query-status", "", "", "", mib(pipeAfterHWM), "")
	if ptyErr == nil {
		fmt.Fprintf(w, "| %-36s | %11s | %9s | %9s | %-21s | %9s |\n", "qmpsh connect SOCK, idle, terminal", "", "", "", mib(ptyHWM), "")
	} else {
		fmt.Fprintf(w, "| %-36s | %11s | %9s | %9s | %-21s | %9s |\n", "qmpsh connect SOCK, idle, terminal", "", "", "", "skipped: no pty", "")
	}

	rawP, qP := progs[0], progs[1]
	ratio := median(qP.wall) / median(rawP.wall)
	ok := ratio <= *target
	verdict := "meets"
	if !ok {
		verdict = "MISSES"
	}
	fmt.Fprintf(w, "\n| %-27s | %-18s | %-6s | %-6s |\n", "comparison", "qmpsh/raw", "target", "result")
	fmt.Fprintf(w, "|%s|%s|%s|%s|\n", dashes(29), dashes(20), dashes(8), dashes(8))
	fmt.Fprintf(w, "| %-27s | %-18s | ≤ %-4.2g | %-6s |\n", "exec query-status, wall",
		fmt.Sprintf("%.2f× [p90 %.2f×]", ratio, percentile(qP.wall, 90)/percentile(rawP.wall, 90)), *target, verdict)
	if rssErr == nil {
		fmt.Fprintf(w, "| %-27s | %-18s | %-6s | %-6s |\n", "exec query-status, peak RSS",
			fmt.Sprintf("%.2f×", median(qP.rss)/median(rawP.rss)), "-", "-")
	}
	if ok {
		fmt.Fprintln(w, "\nqmpsh exec meets its target.")
	} else {
		fmt.Fprintf(w, "\nqmpsh exec takes %.2f× the raw program's wall time, over the %.2g× target.\n", ratio, *target)
	}
	runExits()
	if *strict && !ok {
		os.Exit(1)
	}
}

// prog is one of the compared programs and its measurements.
type prog struct {
	name string
	bin  string
	args []string
	wall []float64 // seconds
	rss  []float64 // bytes, VmHWM at exit
}

// run runs p once and returns its wall time in seconds. A run that
// fails, or does not print query-status's return value, is an error.
func (p *prog) run(env []string) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, p.bin, p.args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &out, &errOut
	t0 := time.Now()
	err := cmd.Run()
	wall := time.Since(t0).Seconds()
	if err != nil {
		return 0, fmt.Errorf("%s: %v: %s", p.name, err, bytes.TrimSpace(errOut.Bytes()))
	}
	if !bytes.Contains(out.Bytes(), []byte(`"status"`)) {
		return 0, fmt.Errorf("%s printed %q, not query-status's return value", p.name, out.Bytes())
	}
	return wall, nil
}

// errNoPtrace is peakRSS's error when the system does not let us trace.
var errNoPtrace = errors.New("no ptrace")

// peakRSS runs p once under ptrace, stops it as it exits, while its
// memory still exists, and returns its VmHWM then.
func (p *prog) peakRSS(env []string) (float64, error) {
	// The tracer is the thread that started the process: every ptrace
	// and wait4 call must come from it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	proc, err := os.StartProcess(p.bin, append([]string{p.bin}, p.args...), &os.ProcAttr{
		Env:   env,
		Files: []*os.File{devnull, devnull, os.Stderr},
		Sys:   &syscall.SysProcAttr{Ptrace: true, Pdeathsig: syscall.SIGKILL},
	})
	if err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOSYS) {
			return 0, fmt.Errorf("%w: %v", errNoPtrace, err)
		}
		return 0, err
	}
	defer proc.Release()
	pid := proc.Pid
	kill := time.AfterFunc(runTimeout, func() { syscall.Kill(pid, syscall.SIGKILL) })
	defer kill.Stop()
	hwm := -1.0
	first := true
	for {
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
			return 0, fmt.Errorf("%s: wait4: %w", p.name, err)
		}
		switch {
		case ws.Exited() || ws.Signaled():
			switch {
			case ws.Signaled() || ws.ExitStatus() != 0:
				return 0, fmt.Errorf("%s (traced): %v", p.name, ws)
			case hwm < 0:
				return 0, fmt.Errorf("%s (traced): exited without stopping at exit", p.name)
			}
			return hwm, nil
		case !ws.Stopped():
			continue
		}
		sig := 0
		switch {
		case first:
			// The SIGTRAP of exec: from now on, stop at exit.
			first = false
			if err := syscall.PtraceSetOptions(pid, syscall.PTRACE_O_TRACEEXIT); err != nil {
				syscall.Kill(pid, syscall.SIGKILL)
				return 0, fmt.Errorf("%s: ptrace: %w", p.name, err)
			}
		case ws.StopSignal() == syscall.SIGTRAP && ws.TrapCause() == syscall.PTRACE_EVENT_EXIT:
			if hwm, err = vmHWM(pid); err != nil {
				syscall.Kill(pid, syscall.SIGKILL)
				return 0, err
			}
		default:
			// A signal for the process (the Go runtime's SIGURG,
			// say): deliver it.
			sig = int(ws.StopSignal())
		}
		if err := syscall.PtraceCont(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			syscall.Kill(pid, syscall.SIGKILL)
			return 0, fmt.Errorf("%s: ptrace: %w", p.name, err)
		}
	}
}

// idlePipe starts the shell with standard input a pipe and -v, waits
// for it to be connected (the reply to its qmp_capabilities shown), lets
// it idle and returns its VmHWM; then runs one query-status through the
// pipe, lets it idle again and returns its VmHWM after that.
func idlePipe(qmpsh, sock string, env []string, idle time.Duration) (idleHWM, afterHWM float64, err error) {
	cmd := exec.Command(qmpsh, "-v", "connect", sock)
	cmd.Env = env
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, 0, err
	}
	// -v's traffic and the results, in one stream, whichever each
	// goes to.
	r, w, err := os.Pipe()
	if err != nil {
		return 0, 0, err
	}
	defer r.Close()
	cmd.Stdout, cmd.Stderr = w, w
	err = cmd.Start()
	w.Close()
	if err != nil {
		return 0, 0, err
	}
	kill := time.AfterFunc(runTimeout, func() { cmd.Process.Kill() })
	defer kill.Stop()
	fail := func(err error) (float64, float64, error) {
		cmd.Process.Kill()
		cmd.Wait()
		return 0, 0, fmt.Errorf("idle shell (pipe): %w", err)
	}
	out := bufio.NewReader(r)
	// readUntil reads lines until one that match accepts.
	readUntil := func(what string, match func(string) bool) error {
		var seen strings.Builder
		for {
			line, err := out.ReadString('\n')
			if err != nil {
				return fmt.Errorf("waiting for %s: %v; the shell printed %q", what, err, seen.String())
			}
			if match(line) {
				return nil
			}
			seen.WriteString(line)
		}
	}
	// The first reply is qmp_capabilities's.
	if err := readUntil("the negotiation", func(l string) bool { return strings.HasPrefix(l, `<-- {"return"`) }); err != nil {
		return fail(err)
	}
	time.Sleep(idle)
	if idleHWM, err = vmHWM(cmd.Process.Pid); err != nil {
		return fail(err)
	}
	if _, err := io.WriteString(stdin, "query-status\n"); err != nil {
		return fail(err)
	}
	if err := readUntil("query-status's result", func(l string) bool {
		return !strings.HasPrefix(l, "<-- ") && !strings.HasPrefix(l, "--> ") && strings.Contains(l, `"status"`)
	}); err != nil {
		return fail(err)
	}
	time.Sleep(idle)
	if afterHWM, err = vmHWM(cmd.Process.Pid); err != nil {
		return fail(err)
	}
	stdin.Close() // end of input: the shell exits
	go io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		return 0, 0, fmt.Errorf("idle shell (pipe): %v", err)
	}
	return idleHWM, afterHWM, nil
}

// idlePty starts the shell on a pseudo-terminal, as a person would, waits
// for its prompt, lets it idle and returns its VmHWM.
func idlePty(qmpsh, sock string, env []string, idle time.Duration) (float64, error) {
	cmd := exec.Command(qmpsh, "connect", "--color", "never", sock)
	cmd.Env = append(slices.Clone(env), "TERM=xterm")
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 200})
	if err != nil {
		return 0, err
	}
	defer f.Close()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	fail := func(err error) (float64, error) {
		cmd.Process.Kill()
		<-waited
		return 0, fmt.Errorf("idle shell (terminal): %w", err)
	}
	// Read until the prompt, then keep draining in the background.
	prompt := make(chan error, 1)
	go func() {
		var seen []byte
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			if prompt != nil {
				seen = append(seen, buf[:n]...)
				if bytes.Contains(seen, []byte("(QEMU) ")) {
					prompt <- nil
					prompt = nil
				} else if err != nil {
					prompt <- fmt.Errorf("no prompt (%v); the terminal showed %q", err, seen)
					prompt = nil
				}
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case err := <-prompt:
		if err != nil {
			return fail(err)
		}
	case <-time.After(runTimeout):
		return fail(errors.New("no prompt"))
	}
	time.Sleep(idle)
	hwm, err := vmHWM(cmd.Process.Pid)
	if err != nil {
		return fail(err)
	}
	if _, err := f.Write([]byte{4}); err != nil { // Ctrl-D on an empty line
		return fail(err)
	}
	select {
	case err := <-waited:
		if err != nil {
			return 0, fmt.Errorf("idle shell (terminal): %v", err)
		}
	case <-time.After(runTimeout):
		return fail(errors.New("Ctrl-D did not end it"))
	}
	return hwm, nil
}

// vmHWM returns a live process's peak RSS.
func vmHWM(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// startQEMU starts QEMU with a QMP monitor on a UNIX socket in dir, as
// pkg/qmp/qmptest's StartQEMU does (see its startListening for why): the
// socket listens before QEMU starts and is handed over as fd 3, left
// non-blocking, with wait=on; a probe connection, which negotiates,
// returns once QEMU has processed its options. QEMU is killed at exit.
func startQEMU(bin, dir string) string {
	path := filepath.Join(dir, "qmp.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	check(err)
	ln.SetUnlinkOnClose(false)
	f, err := nonblockingFile(ln)
	ln.Close()
	check(err)
	var out bytes.Buffer
	cmd := exec.Command(bin, "-M", "none", "-nodefaults", "-display", "none",
		"-chardev", "socket,id=benchproc,fd=3,server=on,wait=on",
		"-mon", "chardev=benchproc,mode=control")
	cmd.ExtraFiles = []*os.File{f}
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	check(cmd.Start())
	f.Close()
	atExit(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	if err := probe(path); err != nil {
		fail(fmt.Errorf("%s did not answer on its QMP socket: %v\n%s", bin, err, out.String()))
	}
	return path
}

// nonblockingFile is pkg/qmp/qmptest's: a duplicate of ln's descriptor
// for QEMU, in non-blocking mode (ln.File's would be switched to blocking
// by os/exec).
func nonblockingFile(ln *net.UnixListener) (*os.File, error) {
	rc, err := ln.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	var dupErr error
	err = rc.Control(func(s uintptr) {
		syscall.ForkLock.RLock()
		defer syscall.ForkLock.RUnlock()
		if fd, dupErr = syscall.Dup(int(s)); dupErr == nil {
			syscall.CloseOnExec(fd)
			dupErr = syscall.SetNonblock(fd, true)
		}
	})
	if err == nil {
		err = dupErr
	}
	if err != nil {
		if fd >= 0 {
			syscall.Close(fd)
		}
		return nil, fmt.Errorf("duplicating the QMP socket: %w", err)
	}
	return os.NewFile(uintptr(fd), ln.Addr().String()), nil
}

// probe reads the greeting, negotiates and leaves.
func probe(path string) error {
	c, err := net.DialTimeout("unix", path, runTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(runTimeout))
	r := bufio.NewReader(c)
	line, err := r.ReadSlice('\n')
	if err != nil {
		return fmt.Errorf("reading greeting: %w", err)
	}
	if !bytes.HasPrefix(line, []byte(`{"QMP":`)) {
		return fmt.Errorf("unexpected greeting %q", line)
	}
	if _, err := c.Write([]byte(`{"execute": "qmp_capabilities"}`)); err != nil {
		return err
	}
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("negotiating: %w", err)
		}
		switch {
		case bytes.HasPrefix(line, []byte(`{"return"`)):
			return nil
		case bytes.Contains(line, []byte(`"error"`)):
			return fmt.Errorf("negotiating: %s", bytes.TrimSpace(line))
		}
	}
}

// childEnv is our environment for the measured processes, without what
// would change qmpsh's behaviour, and with a throwaway home for the
// shell's history.
func childEnv(dir string) []string {
	env := []string{"HOME=" + dir, "XDG_STATE_HOME=" + filepath.Join(dir, "state")}
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "TERM", "HOME", "XDG_STATE_HOME", "NO_COLOR", "QMP_SOCKET":
		default:
			env = append(env, kv)
		}
	}
	return env
}

func median(v []float64) float64 { return percentile(v, 50) }

// percentile is the p-th percentile of v, interpolated between ranks.
func percentile(v []float64, p float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	x := p / 100 * float64(len(s)-1)
	i := int(x)
	if i+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[i] + (x-float64(i))*(s[i+1]-s[i])
}

func ms(sec float64) string { return fmt.Sprintf("%.2f ms", sec*1e3) }

func mib(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }

func fileSize(path string) float64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return float64(fi.Size())
}

func dashes(n int) string { return strings.Repeat("-", n) }

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range bytes.Split(b, []byte("\n")) {
		if k, v, ok := strings.Cut(string(line), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func gomaxprocs() string {
	if v := os.Getenv("GOMAXPROCS"); v != "" {
		return v
	}
	return strconv.Itoa(runtime.NumCPU())
}

func goVersion() string {
	if v := goEnv("GOVERSION"); v != "?" {
		return v
	}
	return runtime.Version()
}

// goEnv is `go env NAME`: how go build builds here.
func goEnv(name string) string {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

// qemuVersion is "QEMU 7.2.22", from its --version.
func qemuVersion(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "QEMU ?"
	}
	first, _, _ := strings.Cut(string(out), "\n")
	if f := strings.Fields(first); len(f) >= 4 && f[1] == "emulator" {
		return "QEMU " + f[3]
	}
	return strings.TrimSpace(first)
}

// exits are what to undo before exiting: QEMU, the temporary directory.
// A signal may make them run while main is running them.
var (
	exitsMu sync.Mutex
	exits   []func()
)

func atExit(f func()) {
	exitsMu.Lock()
	defer exitsMu.Unlock()
	exits = append(exits, f)
}

func runExits() {
	exitsMu.Lock()
	defer exitsMu.Unlock()
	for i := len(exits) - 1; i >= 0; i-- {
		exits[i]()
	}
	exits = nil
}

func check(err error) {
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "benchproc:", err)
	runExits()
	os.Exit(1)
}
