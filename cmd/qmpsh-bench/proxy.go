package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// The proxy subcommand measures qmpsh proxy beside a client talking to
// the same QEMU directly, in one run:
//
//	go run ./cmd/qmpsh-bench proxy [-calls 2000] [-rounds 5] [-clients 8] [-idle 100] [-qemu BIN] [-strict]
//
// One QEMU (-M none) gets two QMP monitors: one for the direct client,
// one for the proxy (the built qmpsh binary, a process of its own). Each
// round times -calls sequential query-status calls of one client, direct
// then through the proxy (the order alternating between rounds), and
// -clients clients through the proxy at once, -calls each; the rates
// compared are the rounds' medians. Last, a fresh proxy gets -idle
// negotiated clients that stay idle, and its peak RSS (VmHWM in
// /proc/PID/status) is read.
//
// Targets: sequential through the proxy ≥ 0.7× direct; the clients
// together ≥ 1.0× one direct client (QEMU is the bottleneck, not the
// proxy); peak RSS with the idle clients ≤ 30 MiB.
func proxyMain(args []string) {
	fs := flag.NewFlagSet("qmpsh-bench proxy", flag.ExitOnError)
	calls := fs.Int("calls", 2000, "query-status calls per client per round")
	rounds := fs.Int("rounds", 5, "rounds")
	clients := fs.Int("clients", 8, "clients through the proxy at once")
	idle := fs.Int("idle", 100, "idle clients for the RSS measurement")
	qemuBin := fs.String("qemu", "qemu-system-x86_64", "the QEMU binary")
	strict := fs.Bool("strict", false, "exit 1 when a result misses its target")
	fs.Parse(args)
	if *calls < 1 || *rounds < 1 || *clients < 1 || *idle < 0 {
		usageError(fs, "-calls, -rounds and -clients must be at least 1, -idle not negative")
	}

	root, dir := workspace()
	qmpsh := filepath.Join(dir, "qmpsh")
	check(goRun(root, "build", "-o", qmpsh, "."))
	direct, upstream := filepath.Join(dir, "direct.sock"), filepath.Join(dir, "qmp.sock")
	qemu, err := qmptest.LaunchQEMU(*qemuBin, upstream, "-qmp", "unix:"+direct+",server=on,wait=off")
	check(err)
	atExit(qemu.Stop)
	env := childEnv(dir)
	start := time.Now()
	load := loadavg()

	proxied, stop, _ := startProxyProcess(qmpsh, upstream, filepath.Join(dir, "p.sock"), env)
	atExit(stop)
	ctx := context.Background()
	dc := connectBench(ctx, direct)
	pc := connectBench(ctx, proxied)
	var seqDirect, seqProxy, parProxy []float64
	for r := range *rounds {
		pair := []struct {
			c    *qmp.Client
			into *[]float64
		}{{dc, &seqDirect}, {pc, &seqProxy}}
		if r%2 == 1 {
			pair[0], pair[1] = pair[1], pair[0]
		}
		for _, p := range pair {
			*p.into = append(*p.into, callRate(*calls, func() { callN(ctx, p.c, *calls) }))
		}
		par := make([]*qmp.Client, *clients)
		for i := range par {
			par[i] = connectBench(ctx, proxied)
		}
		parProxy = append(parProxy, callRate(*calls**clients, func() {
			var wg sync.WaitGroup
			for _, c := range par {
				wg.Add(1)
				go func() {
					defer wg.Done()
					callN(ctx, c, *calls)
				}()
			}
			wg.Wait()
		}))
		for _, c := range par {
			c.Disconnect()
		}
	}
	pc.Disconnect()
	stop()

	// A fresh proxy for the memory of idle clients alone. The first one
	// has exited, so QEMU's monitor is free for it.
	proxied2, stop2, pid := startProxyProcess(qmpsh, upstream, filepath.Join(dir, "p2.sock"), env)
	atExit(stop2)
	idlers := make([]*qmp.Client, *idle)
	for i := range idlers {
		idlers[i] = connectBench(ctx, proxied2)
	}
	// Every one negotiated, and one more round trip through all: the
	// proxy has done its work for each.
	for _, c := range idlers {
		callN(ctx, c, 1)
	}
	hwm, rssErr := vmHWM(pid)
	for _, c := range idlers {
		c.Disconnect()
	}
	stop2()
	dc.Disconnect()
	load = load + " → " + loadavg()

	w := os.Stdout
	fmt.Fprintf(w, "\nqmpsh proxy, %d rounds of %d query-status calls per client, direct and proxied on one QEMU (-M none, two monitors)\n", *rounds, *calls)
	fmt.Fprintln(w, machine(start, load, goVersion(), qemuVersion(*qemuBin)))
	fmt.Fprintln(w)
	t := newTable(column{head: "measurement", width: 40}, column{head: "calls/s (median)", width: 16, right: true},
		column{head: "ratio", width: 6, right: true}, column{head: "target", width: 7}, column{head: "result", width: 6})
	d := median(seqDirect)
	seqRatio := median(seqProxy) / d
	parRatio := median(parProxy) / d
	t.add("one client, direct", fmt.Sprintf("%.0f", d), "", "", "")
	t.add("one client, through the proxy", fmt.Sprintf("%.0f", median(seqProxy)), fmt.Sprintf("%.2f×", seqRatio), "≥ 0.7", verdict(seqRatio >= 0.7))
	t.add(fmt.Sprintf("%d clients at once, through the proxy", *clients), fmt.Sprintf("%.0f", median(parProxy)), fmt.Sprintf("%.2f×", parRatio), "≥ 1.0", verdict(parRatio >= 1.0))
	ok := seqRatio >= 0.7 && parRatio >= 1.0
	if rssErr != nil {
		t.add(fmt.Sprintf("proxy peak RSS, %d idle clients", *idle), "n/a: "+rssErr.Error(), "", "≤ 30 MiB", "-")
	} else {
		t.add(fmt.Sprintf("proxy peak RSS, %d idle clients", *idle), mib(hwm), "", "≤ 30 MiB", verdict(hwm <= 30<<20))
		ok = ok && hwm <= 30<<20
	}
	t.write(w)
	if *strict && !ok {
		exit(1)
	}
}

// startProxyProcess starts qmpsh proxy and waits until it listens. stop
// ends it with SIGTERM and waits; calling it again does nothing.
func startProxyProcess(qmpsh, upstream, listen string, env []string) (addr string, stop func(), pid int) {
	cmd := exec.Command(qmpsh, "proxy", "-s", upstream, "--listen", listen)
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	check(err)
	check(cmd.Start())
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cmd.Process.Signal(os.Interrupt)
			cmd.Wait()
		})
	}
	lines := bufio.NewReader(stderr)
	line, err := lines.ReadString('\n')
	if err != nil || !strings.Contains(line, "listening on") {
		stop()
		fail(fmt.Errorf("qmpsh proxy: %q, %v", line, err))
	}
	go io.Copy(os.Stderr, lines) // its warnings, if any
	return listen, stop, cmd.Process.Pid
}

func connectBench(ctx context.Context, addr string) *qmp.Client {
	c := qmp.NewClient()
	cctx, cancel := context.WithTimeout(ctx, runTimeout)
	defer cancel()
	check(c.Connect(cctx, addr))
	return c
}

func callN(ctx context.Context, c *qmp.Client, n int) {
	for range n {
		if _, err := c.Execute(ctx, "query-status", nil); err != nil {
			fail(err)
		}
	}
}

// callRate runs f, which makes n calls, and returns calls per second.
func callRate(n int, f func()) float64 {
	t0 := time.Now()
	f()
	return float64(n) / time.Since(t0).Seconds()
}
