package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/creack/pty"

	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// The proc subcommand compares, as whole processes, `qmpsh exec
// query-status` with the least a Go program can do for the same result
// (testdata/rawqmp: greeting, qmp_capabilities, query-status, the
// cheapest bytes, one line read per message), and reports the peak RSS of qmpsh exec and of an idle shell:
//
//	go run ./cmd/qmpsh-bench proc [-runs 200] [-warmup 10] [-rssruns 10] [-target 1.3] [-idle 200ms] [-qemu BIN] [-evict] [-strict]
//
// A third program shows how much of the difference is paid before any
// code of qmpsh's runs: rawqmp built with -tags qmpshdeps, which links
// and initialises every package the qmpsh binary does and makes the
// same exchange as rawqmp.
//
// These three are built as go build builds them by default (with cgo
// where a C compiler is found: dynamically linked, as go install gives
// qmpsh). The Makefile builds qmpsh static (CGO_ENABLED=0), which starts
// sooner; so two more programs are qmpsh and rawqmp built so, compared
// with each other, and that qmpsh with the first.
//
// The programs are built into a temporary directory and run against one
// throwaway QEMU (-M none, started by qmptest.LaunchQEMU), one process at
// a time, since a QMP monitor serves one client at a time. The runs are
// interleaved, in rounds of one run of each whose order rotates (raw,
// qmpsh, deps; qmpsh, deps, raw; ...), so that all see the same machine
// and each runs first as often. The wall time of a run is from starting
// the process to having reaped it.
//
// How a binary came into the page cache changes how fast it starts, and
// the bigger one more: the same qmpsh binary ran exec at 1.29-1.37x the
// raw program's time as the linker wrote it (the default here), at
// 1.34-1.35x read back from disk (-evict: the binaries are dropped from
// the page cache after the build, as an installed program is after a
// reboot), 1.26-1.32x copied by install(1), 1.11-1.15x written by a
// single write(2); the kernel maps a file's pages in pieces as large as
// those it cached them in. The programs compared are always loaded
// alike.
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

// runTimeout bounds each process and each wait; a run takes
// milliseconds, the bound only matters when something hangs.
const runTimeout = 30 * time.Second

func procMain(args []string) {
	fs := flag.NewFlagSet("qmpsh-bench proc", flag.ExitOnError)
	runs := fs.Int("runs", 200, "measured runs of each program")
	warmup := fs.Int("warmup", 10, "unmeasured runs of each program first")
	target := fs.Float64("target", 1.3, "most qmpsh/raw ratio of the median wall times that meets the target")
	idle := fs.Duration("idle", 200*time.Millisecond, "how long the idle shell waits before its RSS is read")
	qemuBin := fs.String("qemu", "qemu-system-x86_64", "the QEMU binary")
	rssRuns := fs.Int("rssruns", 10, "runs of each program, traced, for the peak RSS at exit")
	strict := fs.Bool("strict", false, "exit 1 when the ratio misses its target")
	evicted := fs.Bool("evict", false, "drop the built binaries from the page cache first: run them as read back from disk")
	fs.Parse(args)
	if *runs < 1 || *warmup < 0 || *rssRuns < 1 {
		usageError(fs, "-runs and -rssruns must be at least 1, -warmup not negative")
	}

	root, dir := workspace()
	qmpsh, raw, rawDeps := filepath.Join(dir, "qmpsh"), filepath.Join(dir, "rawqmp"), filepath.Join(dir, "rawqmp-deps")
	check(goRun(root, "build", "-o", qmpsh, "."))
	check(goRun(root, "build", "-o", raw, "./testdata/rawqmp"))
	check(goRun(root, "build", "-tags", "qmpshdeps", "-o", rawDeps, "./testdata/rawqmp"))
	qmpshStatic, rawStatic := filepath.Join(dir, "qmpsh-static"), filepath.Join(dir, "rawqmp-static")
	static := []string{"CGO_ENABLED=0"}
	check(goRunEnv(root, static, "build", "-o", qmpshStatic, "."))
	check(goRunEnv(root, static, "build", "-o", rawStatic, "./testdata/rawqmp"))
	loaded := "as the linker wrote them"
	if *evicted {
		for _, b := range []string{qmpsh, raw, rawDeps, qmpshStatic, rawStatic} {
			check(evict(b))
		}
		loaded = "read back from disk (-evict)"
	}

	sock := filepath.Join(dir, "qmp.sock")
	qemu, err := qmptest.LaunchQEMU(*qemuBin, sock)
	check(err)
	atExit(qemu.Stop)
	env := childEnv(dir)
	start := time.Now()
	load := loadavg()

	progs := []*prog{
		{name: "raw Go: testdata/rawqmp SOCK", bin: raw, args: []string{sock}},
		{name: "qmpsh exec -s SOCK query-status", bin: qmpsh, args: []string{"exec", "-s", sock, "query-status"}},
		{name: "the raw program, qmpsh's packages linked", bin: rawDeps, args: []string{sock}},
		{name: "raw Go, static (CGO_ENABLED=0)", bin: rawStatic, args: []string{sock}},
		{name: "qmpsh exec, static, as make builds it", bin: qmpshStatic, args: []string{"exec", "-s", sock, "query-status"}},
	}
	rotate(progs, env, *warmup, *runs, func(p *prog, wall float64) { p.wall = append(p.wall, wall) })
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
	fmt.Fprintf(w, "\nwhole process, %d runs of each, interleaved, on one QEMU (-M none), the binaries %s; wall time from start to reaped\n", *runs, loaded)
	fmt.Fprintln(w, machine(start, load, goVersion()+" (CGO_ENABLED="+goEnv("CGO_ENABLED")+")", qemuVersion(*qemuBin)))
	fmt.Fprintf(w, "peak RSS: VmHWM, of exec at exit (%d traced runs of each), of the shells after %v idle\n\n", *rssRuns, *idle)
	t := newTable(
		column{head: "process", width: 40}, column{head: "wall median", width: 11, right: true},
		column{head: "wall p90", width: 9, right: true}, column{head: "wall min", width: 9, right: true},
		column{head: "peak RSS median (max)", width: 21}, column{head: "binary", width: 9, right: true})
	for _, p := range progs {
		rss := "n/a: " + strings.TrimPrefix(fmt.Sprint(rssErr), errNoPtrace.Error()+": ")
		if rssErr == nil {
			rss = fmt.Sprintf("%s (%s)", mib(median(p.rss)), mib(slices.Max(p.rss)))
		}
		t.add(p.name, ms(median(p.wall)), ms(percentile(p.wall, 90)), ms(slices.Min(p.wall)), rss, mib(fileSize(p.bin)))
	}
	t.add("qmpsh connect SOCK, idle, stdin pipe", "", "", "", mib(pipeHWM), "")
	t.add("  the same after one query-status", "", "", "", mib(pipeAfterHWM), "")
	if ptyErr == nil {
		t.add("qmpsh connect SOCK, idle, terminal", "", "", "", mib(ptyHWM), "")
	} else {
		t.add("qmpsh connect SOCK, idle, terminal", "", "", "", "skipped: no pty", "")
	}
	t.write(w)

	rawP, qP, depsP, rawS, qS := progs[0], progs[1], progs[2], progs[3], progs[4]
	ratio, ratioS := median(qP.wall)/median(rawP.wall), median(qS.wall)/median(rawS.wall)
	ok, okS := ratio <= *target, ratioS <= *target
	fmt.Fprintln(w)
	t = newTable(column{head: "comparison", width: 38}, column{head: "ratio", width: 18},
		column{head: "target", width: 6}, column{head: "result", width: 6})
	wall := func(a, b *prog) string {
		return fmt.Sprintf("%.2f× [p90 %.2f×]", median(a.wall)/median(b.wall), percentile(a.wall, 90)/percentile(b.wall, 90))
	}
	t.add("exec query-status, wall: qmpsh/raw", wall(qP, rawP), fmt.Sprintf("≤ %.2g", *target), verdict(ok))
	if rssErr == nil {
		t.add("exec query-status, peak RSS: qmpsh/raw", fmt.Sprintf("%.2f×", median(qP.rss)/median(rawP.rss)), "-", "-")
	}
	// How much of the gap is starting a program with qmpsh's packages.
	t.add("raw, qmpsh's packages linked, wall", wall(depsP, rawP), "-", "-")
	t.add("both static, wall: qmpsh/raw", wall(qS, rawS), fmt.Sprintf("≤ %.2g", *target), verdict(okS))
	t.add("qmpsh static / qmpsh, wall", wall(qS, qP), "-", "-")
	t.write(w)
	for _, r := range []struct {
		how   string
		ratio float64
		ok    bool
	}{{"as go build builds both", ratio, ok}, {"both static", ratioS, okS}} {
		if r.ok {
			fmt.Fprintf(w, "\nqmpsh exec meets its target, %s.", r.how)
		} else {
			fmt.Fprintf(w, "\nqmpsh exec takes %.2f× the raw program's wall time, %s, over the %.2g× target.", r.ratio, r.how, *target)
		}
	}
	fmt.Fprintln(w)
	if *strict && !(ok && okS) {
		exit(1)
	}
}

// prog is one of the compared programs and its measurements.
// runner is a program a benchmark times: run runs it once and returns
// its wall time in seconds.
type runner interface {
	run(env []string) (float64, error)
}

// rotate runs each of progs warmup+runs times, in rounds of one run of
// each whose order rotates, so that each program runs first as often,
// and records the wall time of every run after the warm-up.
func rotate[P runner](progs []P, env []string, warmup, runs int, record func(P, float64)) {
	for i := range warmup + runs {
		for k := range progs {
			p := progs[(i+k)%len(progs)]
			wall, err := p.run(env)
			check(err)
			if i >= warmup {
				record(p, wall)
			}
		}
	}
}

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

func ms(sec float64) string { return fmt.Sprintf("%.2f ms", sec*1e3) }

func mib(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }

func fileSize(path string) float64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return float64(fi.Size())
}
