package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// The qemu subcommand measures what users feel: the throughput of
// query-status on a real QEMU (-M none, started by qmptest.LaunchQEMU),
// from three programs, each a process of its own, built into a
// temporary directory:
//
//   - the floor, testdata/rawqmp -n: the cheapest bytes QEMU answers,
//     {"execute":"query-status"} without id or newline, one line read per
//     reply; for several callers, pipelined (that many requests in flight,
//     new ones written as replies come);
//   - for several callers, the floor with ids, rawqmp -n -ids: two
//     requests in flight, every other one with a one-digit id, the least
//     a client sends that never has two requests without an id in
//     flight, as qmpsh does (QEMU reads its monitor a byte at a time, so
//     the 7 bytes of ,"id":N on half the requests cost it about a tenth
//     of its rate);
//   - go-qemu, testdata/goqemu: github.com/digitalocean/go-qemu's
//     SocketMonitor, in a module of its own so that qmpsh does not depend
//     on it;
//   - qmpsh, testdata/qmpshlib: qmp.Client.
//
// Each connects, negotiates, makes -warmup calls, then times -n calls
// (from -callers goroutines sharing the connection, for the clients) and
// prints its rate. A QMP monitor serves one client at a time, so the
// programs run one after the other, in rounds: in each round, each
// program once for each number of callers, in an order that rotates from
// round to round. Ratios are taken within a round, between runs next to
// each other, and the table gives their median over the rounds.
//
// The exit status is 1 when a program fails, or, with -strict, when a
// ratio misses its target.

// qemuTarget is a target of the qemu table: qmpsh at least vsRaw times
// the floor and vsPeer times go-qemu.
type qemuTarget struct {
	callers       int
	vsRaw, vsPeer float64
}

var qemuTargets = []qemuTarget{{1, 0.9, 1.1}, {8, 0.85, 1.1}}

func qemuMain(args []string) {
	fs := flag.NewFlagSet("qmpsh-bench qemu", flag.ExitOnError)
	rounds := fs.Int("rounds", 7, "rounds of runs")
	n := fs.Int("n", 10000, "timed calls of each run")
	warmup := fs.Int("warmup", 200, "untimed calls before them")
	qemuBin := fs.String("qemu", "qemu-system-x86_64", "the QEMU binary")
	strict := fs.Bool("strict", false, "exit 1 when a ratio misses its target")
	fs.Parse(args)
	if *rounds < 1 || *n < 1 || *warmup < 0 {
		usageError(fs, "-rounds and -n must be at least 1, -warmup not negative")
	}

	root, dir := workspace()
	progs := []*rateProg{
		{name: "raw", bin: filepath.Join(dir, "rawqmp")},
		{name: "go-qemu", bin: filepath.Join(dir, "goqemu")},
		{name: "qmpsh", bin: filepath.Join(dir, "qmpshlib")},
		{name: "raw-ids", bin: filepath.Join(dir, "rawqmp"), args: []string{"-ids"}, manyOnly: true},
	}
	check(goRun(root, "build", "-o", progs[0].bin, "./testdata/rawqmp"))
	check(goRun(filepath.Join(root, "testdata", "goqemu"), "build", "-o", progs[1].bin, "."))
	check(goRun(root, "build", "-o", progs[2].bin, "./testdata/qmpshlib"))

	sock := filepath.Join(dir, "qmp.sock")
	qemu, err := qmptest.LaunchQEMU(*qemuBin, sock)
	check(err)
	atExit(qemu.Stop)
	start := time.Now()
	load := loadavg()

	// rates[callers][program] = one rate per round
	rates := map[int]map[string][]float64{}
	for r := range *rounds {
		for ci, tg := range qemuTargets {
			if rates[tg.callers] == nil {
				rates[tg.callers] = map[string][]float64{}
			}
			for i := range progs {
				p := progs[(i+r+ci)%len(progs)]
				if p.manyOnly && tg.callers == 1 {
					continue
				}
				rate, err := p.run(sock, *n, *warmup, tg.callers)
				check(err)
				fmt.Fprintf(os.Stderr, "round %d, %d caller(s): %-7s %8.0f ops/s\n", r+1, tg.callers, p.name, rate)
				rates[tg.callers][p.name] = append(rates[tg.callers][p.name], rate)
			}
		}
	}
	load = load + " → " + loadavg()

	w := os.Stdout
	fmt.Fprintf(w, "\nreal QEMU: %d query-status per run, each program its own process, median of %d interleaved rounds (ratio range in brackets)\n",
		*n, *rounds)
	fmt.Fprintln(w, machine(start, load, goVersion(), qemuVersion(*qemuBin)))
	fmt.Fprintln(w)
	t := newTable(
		column{head: "callers", width: 7}, column{head: "raw floor", width: 11, right: true},
		column{head: "raw, ids", width: 11, right: true},
		column{head: "go-qemu", width: 11, right: true}, column{head: "qmpsh", width: 11, right: true},
		column{head: "qmpsh/raw", width: 17}, column{head: "target", width: 6},
		column{head: "qmpsh/raw, ids", width: 17},
		column{head: "qmpsh/go-qemu", width: 17}, column{head: "target", width: 6},
		column{head: "result", width: 6})
	missed := 0
	for _, tg := range qemuTargets {
		m := rates[tg.callers]
		vsRaw, vsPeer := ratios(m["qmpsh"], m["raw"]), ratios(m["qmpsh"], m["go-qemu"])
		ok := median(vsRaw) >= tg.vsRaw && median(vsPeer) >= tg.vsPeer
		if !ok {
			missed++
		}
		label := "1"
		if tg.callers > 1 {
			label = strconv.Itoa(tg.callers) + ", one connection"
		}
		raw := rate(median(m["raw"]), "ops/s")
		if tg.callers > 1 {
			raw += " (pipelined)"
		}
		rawIDs := "-"
		if len(m["raw-ids"]) > 0 {
			rawIDs = rate(median(m["raw-ids"]), "ops/s")
		}
		t.add(label, raw, rawIDs, rate(median(m["go-qemu"]), "ops/s"), rate(median(m["qmpsh"]), "ops/s"),
			ratioCell(vsRaw), fmt.Sprintf("≥ %.2g", tg.vsRaw), ratioCell(ratios(m["qmpsh"], m["raw-ids"])),
			ratioCell(vsPeer), fmt.Sprintf("≥ %.2g", tg.vsPeer), verdict(ok))
	}
	t.write(w)
	if missed > 0 {
		fmt.Fprintf(w, "\n%d row(s) below target.\n", missed)
	} else {
		fmt.Fprintln(w, "\nEvery ratio meets its target.")
	}
	if *strict && missed > 0 {
		exit(1)
	}
}

// ratios returns a[i]/b[i] for each round.
func ratios(a, b []float64) []float64 {
	var r []float64
	for i := range min(len(a), len(b)) {
		if b[i] > 0 {
			r = append(r, a[i]/b[i])
		}
	}
	return r
}

func ratioCell(r []float64) string {
	if len(r) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f× [%.2f–%.2f]", median(r), slices.Min(r), slices.Max(r))
}

// rateProg is one of the programs of the qemu table.
type rateProg struct {
	name, bin string
	args      []string // before the common flags
	manyOnly  bool     // runs only for several callers
}

// run runs p once and returns the rate it printed.
func (p *rateProg) run(sock string, n, warmup, callers int) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	args := append(slices.Clip(p.args), "-n", strconv.Itoa(n), "-warmup", strconv.Itoa(warmup),
		"-callers", strconv.Itoa(callers), sock)
	cmd := exec.CommandContext(ctx, p.bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%s: %v: %s", p.name, err, bytes.TrimSpace(errOut.Bytes()))
	}
	v, ok := strings.CutPrefix(strings.TrimSpace(out.String()), "ops/s ")
	r, err := strconv.ParseFloat(v, 64)
	if !ok || err != nil {
		return 0, fmt.Errorf("%s printed %q, not its rate", p.name, out.String())
	}
	return r, nil
}
