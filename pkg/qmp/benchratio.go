//go:build ignore

// Benchratio runs the benchmarks of package qmp (bench_test.go) and
// prints, for each client benchmark, its ratio to the raw-socket floor
// measured beside it, against the target. It is what `make bench` runs:
//
//	go run ./pkg/qmp/benchratio.go [-rounds 3] [-benchtime 1s] [-bench REGEXP] [-o bench.out] [-strict]
//
// Each round is one run of the test binary; a client benchmark and its
// floor run one after the other within it, and the ratio is taken per
// round, so that both see the same machine. The table gives the median
// over the rounds (and the range of the ratio). The raw `go test` output
// is shown as it comes and saved to -o.
//
// The exit status is 1 when a benchmark fails, or, with -strict, when a
// ratio misses its target.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

const pkg = "github.com/qmpsh/qmpsh/pkg/qmp"

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

var servers = []string{"fake", "qemu"}

func main() {
	rounds := flag.Int("rounds", 3, "runs of the benchmarks")
	benchtime := flag.String("benchtime", "1s", "-test.benchtime of each benchmark")
	bench := flag.String("bench", "^Benchmark(ExecuteSequential|ExecuteParallel8|Events)$", "-test.bench: which benchmarks")
	out := flag.String("o", "bench.out", "file for the raw output")
	strict := flag.Bool("strict", false, "exit 1 when a ratio misses its target")
	flag.Parse()

	dir, err := os.MkdirTemp("", "benchratio")
	check(err)
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "qmp.test")
	build := exec.Command("go", "test", "-c", "-o", bin, pkg)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	check(build.Run())
	pkgDir, err := exec.Command("go", "list", "-f", "{{.Dir}}", pkg).Output()
	check(err)

	f, err := os.Create(*out)
	check(err)
	defer f.Close()
	start := time.Now()
	load := loadavg()
	// results[round][benchmark name] = metrics by unit
	var results []map[string]map[string]float64
	skipped := map[string]bool{}
	failed := false
	for r := 1; r <= *rounds; r++ {
		fmt.Fprintf(io.MultiWriter(os.Stdout, f), "# round %d of %d\n", r, *rounds)
		cmd := exec.Command(bin, "-test.run", "^$", "-test.bench", *bench,
			"-test.benchtime", *benchtime, "-test.benchmem", "-test.v")
		cmd.Dir = strings.TrimSpace(string(pkgDir))
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
				fmt.Fprintln(io.MultiWriter(os.Stdout, f), line)
			}
			if m := skipLine.FindStringSubmatch(line); m != nil {
				skipped[m[1]] = true
			}
			if name, metrics, ok := parse(line); ok {
				res[name] = metrics
			}
		}
		if err := cmd.Wait(); err != nil {
			fmt.Fprintf(os.Stderr, "benchratio: round %d: %v\n", r, err)
			failed = true
		}
		results = append(results, res)
	}
	load = load + " → " + loadavg()

	w := io.MultiWriter(os.Stdout, f)
	fmt.Fprintf(w, "\nclient/floor, median of %d rounds (ratio range in brackets); -benchtime %s\n", *rounds, *benchtime)
	fmt.Fprintf(w, "%s, %d CPUs (GOMAXPROCS %s), %s/%s, %s, %s; load average %s\n\n",
		cpuModel(), runtime.NumCPU(), gomaxprocs(), runtime.GOOS, runtime.GOARCH, goVersion(),
		start.Format("2006-01-02"), load)
	fmt.Fprintf(w, "| %-17s | %-6s | %14s | %-30s | %-17s | %-6s | %-6s |\n",
		"benchmark", "server", "client", "floor", "client/floor", "target", "result")
	fmt.Fprintf(w, "|%s|%s|%s|%s|%s|%s|%s|\n", dashes(19), dashes(8), dashes(16), dashes(32), dashes(19), dashes(8), dashes(8))
	missed := 0
	for _, p := range pairs {
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
				verdict := "meets"
				if !ok {
					verdict, missed = "MISSES", missed+1
				}
				fmt.Fprintf(w, "| %-17s | %-6s | %14s | %-30s | %-17s | ≥ %-4.2g | %-6s |\n", p.group, srv,
					rate(median(cs), p.unit), p.floor+" "+rate(median(fs), p.unit),
					fmt.Sprintf("%.2f× [%.2f–%.2f]", median(ratios), slices.Min(ratios), slices.Max(ratios)),
					p.target, verdict)
			case skipped[cname] || skipped[fname]:
				fmt.Fprintf(w, "| %-17s | %-6s | %14s | %-30s | %-17s | ≥ %-4.2g | %-6s |\n", p.group, srv, "skipped", "skipped", "", p.target, "-")
			}
		}
	}
	if missed > 0 {
		fmt.Fprintf(w, "\n%d ratio(s) below target.\n", missed)
	} else {
		fmt.Fprintln(w, "\nEvery ratio meets its target.")
	}
	if failed || *strict && missed > 0 {
		os.Exit(1)
	}
}

// benchLine matches a result: name-GOMAXPROCS, iterations, then value
// unit pairs.
var (
	benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)
	skipLine  = regexp.MustCompile(`--- SKIP: (Benchmark\S+)`)
)

func parse(line string) (string, map[string]float64, bool) {
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

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
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
	out, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		return runtime.Version()
	}
	return strings.TrimSpace(string(out))
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchratio:", err)
		os.Exit(1)
	}
}
