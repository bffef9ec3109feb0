package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The ratio subcommand runs the benchmarks of package qmp (bench_test.go)
// and prints, for each client benchmark, its ratio to the raw-socket floor
// measured beside it, against the target.
//
// Each round is one run of the test binary; a client benchmark and its
// floor run one after the other within it, and the ratio is taken per
// round, so that both see the same machine. The table gives the median
// over the rounds (and the range of the ratio). The raw `go test` output
// is shown as it comes and saved to -o.
//
// The exit status is 1 when a benchmark fails, or, with -strict, when a
// ratio misses its target.

// pair is a client benchmark and its floor: names below Benchmark<group>/,
// for each server.
type pair struct {
	group, client, floor, unit string
	target                     float64
}

var pairs = []pair{
	{"ExecuteSequential", "client", "floor", "ops/s", 0.8},
	{"ExecuteParallel8", "client", "floor-pipelined", "ops/s", 0.5},
	{"Events", "client", "floor", "events/s", 0.5},
}

// servers are the benchmarks' last name element, in the table's order.
var servers = []string{"fake", "qemu"}

func ratioMain(args []string) {
	fs := flag.NewFlagSet("qmpsh-bench ratio", flag.ExitOnError)
	rounds := fs.Int("rounds", 3, "runs of the benchmarks")
	benchtime := fs.String("benchtime", "1s", "-test.benchtime of each benchmark")
	// The fake server's only: against QEMU, the qemu subcommand measures
	// each program as a process of its own, as the in-process floor,
	// sharing its process with the benchmarks, runs slower than it does
	// alone, which flatters the ratio.
	bench := fs.String("bench", "^Benchmark(ExecuteSequential|ExecuteParallel8|Events)$/./^fake$",
		"-test.bench: which benchmarks (…/qemu$ for QEMU's)")
	out := fs.String("o", "bench.out", "file for the raw output")
	strict := fs.Bool("strict", false, "exit 1 when a ratio misses its target")
	fs.Parse(args)
	if *rounds < 1 {
		usageError(fs, "-rounds must be at least 1")
	}

	root, dir := workspace()
	bin := filepath.Join(dir, "qmp.test")
	check(goRun(root, "test", "-c", "-o", bin, "./pkg/qmp"))

	f, err := os.Create(*out)
	check(err)
	defer f.Close()
	w := io.MultiWriter(os.Stdout, f)
	start := time.Now()
	load := loadavg()
	// results[round][benchmark name] = metrics by unit
	var results []map[string]map[string]float64
	skipped := map[string]bool{}
	failed := false
	for r := 1; r <= *rounds; r++ {
		fmt.Fprintf(w, "# round %d of %d\n", r, *rounds)
		cmd := exec.Command(bin, "-test.run", "^$", "-test.bench", *bench,
			"-test.benchtime", *benchtime, "-test.benchmem", "-test.v")
		cmd.Dir = filepath.Join(root, "pkg", "qmp")
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		check(err)
		check(cmd.Start())
		res := map[string]map[string]float64{}
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			// -test.v says RUN/SKIP for every benchmark: show only skips.
			if !strings.Contains(line, "=== RUN") && !strings.HasPrefix(strings.TrimSpace(line), "--- BENCH") {
				fmt.Fprintln(w, line)
			}
			if m := skipLine.FindStringSubmatch(line); m != nil {
				skipped[m[1]] = true
			}
			if name, metrics, ok := parseBenchLine(line); ok {
				res[name] = metrics
			}
		}
		if err := cmd.Wait(); err != nil {
			fmt.Fprintf(os.Stderr, "qmpsh-bench ratio: round %d: %v\n", r, err)
			failed = true
		}
		results = append(results, res)
	}
	load = load + " → " + loadavg()

	fmt.Fprintf(w, "\nclient/floor, median of %d rounds (ratio range in brackets); -benchtime %s\n", *rounds, *benchtime)
	fmt.Fprintf(w, "%s\n\n", machine(start, load, goVersion()))
	t, missed := ratioTable(results, skipped)
	t.write(w)
	if missed > 0 {
		fmt.Fprintf(w, "\n%d ratio(s) below target.\n", missed)
	} else {
		fmt.Fprintln(w, "\nEvery ratio meets its target.")
	}
	if failed || *strict && missed > 0 {
		f.Close()
		exit(1)
	}
}

// ratioTable is the table of the pairs' ratios over the rounds' results,
// and how many of them miss their target.
func ratioTable(results []map[string]map[string]float64, skipped map[string]bool) (*table, int) {
	t := newTable(
		column{head: "benchmark", width: 17}, column{head: "server", width: 6},
		column{head: "client", width: 14, right: true}, column{head: "floor", width: 30},
		column{head: "client/floor", width: 17}, column{head: "target", width: 6},
		column{head: "result", width: 6})
	missed := 0
	for _, p := range pairs {
		target := fmt.Sprintf("≥ %.2g", p.target)
		for _, srv := range servers {
			cname := "Benchmark" + p.group + "/" + p.client + "/" + srv
			fname := "Benchmark" + p.group + "/" + p.floor + "/" + srv
			var cs, fs, ratios []float64
			for _, res := range results {
				c, okc := res[cname][p.unit]
				fl, okf := res[fname][p.unit]
				if okc && okf && fl > 0 {
					cs, fs, ratios = append(cs, c), append(fs, fl), append(ratios, c/fl)
				}
			}
			switch {
			case len(ratios) > 0:
				ok := median(ratios) >= p.target
				if !ok {
					missed++
				}
				t.add(p.group, srv, rate(median(cs), p.unit), p.floor+" "+rate(median(fs), p.unit),
					fmt.Sprintf("%.2f× [%.2f–%.2f]", median(ratios), slices.Min(ratios), slices.Max(ratios)),
					target, verdict(ok))
			case skipped[cname] || skipped[fname]:
				t.add(p.group, srv, "skipped", "skipped", "", target, "-")
			}
		}
	}
	return t, missed
}

// benchLine matches a result: name-GOMAXPROCS, iterations, then value
// unit pairs.
var (
	benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)
	skipLine  = regexp.MustCompile(`--- SKIP: (Benchmark\S+)`)
)

// parseBenchLine returns a result line's benchmark name and its metrics
// by unit.
func parseBenchLine(line string) (string, map[string]float64, bool) {
	m := benchLine.FindStringSubmatch(line)
	if m == nil {
		return "", nil, false
	}
	f := strings.Fields(m[2])
	metrics := map[string]float64{}
	for i := 0; i+1 < len(f); i += 2 {
		if v, err := strconv.ParseFloat(f[i], 64); err == nil {
			metrics[f[i+1]] = v
		}
	}
	return m[1], metrics, true
}

func rate(v float64, unit string) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM %s", v/1e6, unit)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk %s", v/1e3, unit)
	}
	return fmt.Sprintf("%.0f %s", v, unit)
}
