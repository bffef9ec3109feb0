package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/qmpsh/qmpsh/pkg/ga"
	"github.com/qmpsh/qmpsh/pkg/ga/gatest"
)

// The ga subcommand measures qmpsh ga against the real guest agent
// (qemu-ga run on this host by gatest.LaunchAgent), beside
// testdata/rawga, the least a Go program can do for the same exchanges:
//
//	go run ./cmd/qmpsh-bench ga [-runs 100] [-warmup 5] [-rounds 3] [-size 64] [-chunks 128,256,...] [-strict]
//
// run: `qmpsh ga run -s SOCK -- /bin/true` and `rawga run SOCK
// /bin/true` as whole processes, interleaved in pairs whose order
// alternates; the wall time of a run is from start to reaped. Target:
// qmpsh's median at most 1.5× raw's.
//
// cp: a file of -size MiB of random bytes copied into the guest and out
// again, by `qmpsh ga cp` and by rawga at each of -chunks KiB per
// request, -rounds times each, interleaved. The floor is rawga's best
// median throughput over the chunk sizes (its largest practical chunk),
// in each direction. Target: qmpsh's median throughput at least 0.7× the
// floor's.
func gaMain(args []string) {
	fs := flag.NewFlagSet("qmpsh-bench ga", flag.ExitOnError)
	runs := fs.Int("runs", 100, "measured runs of each program for ga run")
	warmup := fs.Int("warmup", 5, "unmeasured runs of each program first")
	rounds := fs.Int("rounds", 3, "copies of the file each way by each program and chunk size")
	size := fs.Int("size", 64, "MiB copied")
	chunkList := fs.String("chunks", "128,256,512,1024,2048,4096", "rawga's chunk sizes in KiB, comma-separated")
	runTarget := fs.Float64("run-target", 1.5, "most qmpsh/raw ratio of ga run's median wall times")
	cpTarget := fs.Float64("cp-target", 0.7, "least qmpsh/raw ratio of ga cp's median throughputs")
	strict := fs.Bool("strict", false, "exit 1 when a ratio misses its target")
	fs.Parse(args)
	var chunks []int
	for _, c := range strings.Split(*chunkList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			usageError(fs, "-chunks: want KiB counts such as 256,1024")
		}
		chunks = append(chunks, n<<10)
	}
	if *runs < 1 || *warmup < 0 || *rounds < 1 || *size < 1 {
		usageError(fs, "-runs, -rounds and -size must be at least 1, -warmup not negative")
	}
	bin := gatest.AgentBinary()
	if bin == "" {
		fail(fmt.Errorf("qemu-ga not found: install qemu-guest-agent (make qemu)"))
	}

	root, dir := workspace()
	qmpsh, raw := filepath.Join(dir, "qmpsh"), filepath.Join(dir, "rawga")
	for _, b := range [][2]string{{qmpsh, "."}, {raw, "./testdata/rawga"}} {
		check(goRun(root, "build", "-o", b[0], b[1]))
	}
	agent, err := gatest.LaunchAgent(bin)
	check(err)
	atExit(agent.Stop)
	sock := agent.Path
	env := childEnv(dir)
	start := time.Now()
	load := loadavg()

	// ga run.
	progs := []*gaProg{
		{name: "raw Go: testdata/rawga run SOCK /bin/true", argv: []string{raw, "run", sock, "/bin/true"}},
		{name: "qmpsh ga run -s SOCK -- /bin/true", argv: []string{qmpsh, "ga", "run", "-s", sock, "--", "/bin/true"}},
	}
	rotate(progs, env, *warmup, *runs, func(p *gaProg, wall float64) { p.times = append(p.times, wall) })

	// ga cp.
	local := filepath.Join(dir, "file")
	data := make([]byte, *size<<20)
	rand.Read(data)
	check(os.WriteFile(local, data, 0o600))
	guest := filepath.Join(agent.Dir, "file")
	back := filepath.Join(dir, "back")
	type cpProg struct {
		name    string
		chunk   int
		in, out []string
		inT     []float64
		outT    []float64
	}
	var cps []*cpProg
	for _, c := range chunks {
		n := strconv.Itoa(c)
		cps = append(cps, &cpProg{name: fmt.Sprintf("raw Go: rawga, %d KiB per request", c>>10), chunk: c,
			in: []string{raw, "in", sock, local, guest, n}, out: []string{raw, "out", sock, guest, back, n}})
	}
	q := &cpProg{name: "qmpsh ga cp", in: []string{qmpsh, "ga", "cp", "-s", sock, local, ":" + guest},
		out: []string{qmpsh, "ga", "cp", "-s", sock, ":" + guest, back}}
	cps = append(cps, q)
	for r := range *rounds {
		order := slices.Clone(cps)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, p := range order {
			for _, d := range []struct {
				argv []string
				t    *[]float64
				dst  string
			}{{p.in, &p.inT, guest}, {p.out, &p.outT, back}} {
				wall, err := (&gaProg{name: p.name, argv: d.argv}).run(env)
				check(err)
				got, err := os.ReadFile(d.dst)
				check(err)
				if !bytes.Equal(got, data) {
					fail(fmt.Errorf("%s: %s differs from the original", p.name, d.dst))
				}
				*d.t = append(*d.t, float64(len(data))/wall)
			}
		}
	}
	load = load + " → " + loadavg()

	w := os.Stdout
	fmt.Fprintf(w, "\nqmpsh ga against qemu-ga on this host (%s), beside testdata/rawga; wall time from start to reaped\n", filepath.Base(bin))
	fmt.Fprintln(w, machine(start, load, goVersion()+" (CGO_ENABLED="+goEnv("CGO_ENABLED")+")", agentVersion(bin)))
	fmt.Fprintf(w, "\nga run, %d runs of each, interleaved\n\n", *runs)
	t := newTable(column{head: "process", width: 42}, column{head: "wall median", width: 11, right: true},
		column{head: "wall p90", width: 9, right: true}, column{head: "wall min", width: 9, right: true})
	for _, p := range progs {
		t.add(p.name, ms(median(p.times)), ms(percentile(p.times, 90)), ms(slices.Min(p.times)))
	}
	t.write(w)
	fmt.Fprintf(w, "\nga cp of %d MiB, %d rounds of each, interleaved; throughput median (min)\n\n", *size, *rounds)
	t = newTable(column{head: "copier", width: 34}, column{head: "into the guest", width: 20, right: true},
		column{head: "out of the guest", width: 20, right: true})
	rateCell := func(v []float64) string {
		return fmt.Sprintf("%.1f (%.1f) MiB/s", median(v)/(1<<20), slices.Min(v)/(1<<20))
	}
	var bestIn, bestOut float64
	var same *cpProg // rawga at qmpsh's own chunk size, if measured
	for _, p := range cps {
		t.add(p.name, rateCell(p.inT), rateCell(p.outT))
		if p != q {
			bestIn, bestOut = max(bestIn, median(p.inT)), max(bestOut, median(p.outT))
		}
		if p.chunk == ga.DefaultChunkSize {
			same = p
		}
	}
	t.write(w)

	runRatio := median(progs[1].times) / median(progs[0].times)
	inRatio, outRatio := median(q.inT)/bestIn, median(q.outT)/bestOut
	fmt.Fprintln(w)
	t = newTable(column{head: "comparison", width: 30}, column{head: "qmpsh/raw", width: 9},
		column{head: "target", width: 6}, column{head: "result", width: 6})
	okRun, okIn, okOut := runRatio <= *runTarget, inRatio >= *cpTarget, outRatio >= *cpTarget
	t.add("ga run /bin/true, wall", fmt.Sprintf("%.2f×", runRatio), fmt.Sprintf("≤ %.2g", *runTarget), verdict(okRun))
	t.add("ga cp into the guest, MiB/s", fmt.Sprintf("%.2f×", inRatio), fmt.Sprintf("≥ %.2g", *cpTarget), verdict(okIn))
	t.add("ga cp out of the guest, MiB/s", fmt.Sprintf("%.2f×", outRatio), fmt.Sprintf("≥ %.2g", *cpTarget), verdict(okOut))
	if same != nil {
		k := ga.DefaultChunkSize >> 10
		t.add(fmt.Sprintf("  in, vs rawga at %d KiB too", k), fmt.Sprintf("%.2f×", median(q.inT)/median(same.inT)), "-", "-")
		t.add(fmt.Sprintf("  out, vs rawga at %d KiB too", k), fmt.Sprintf("%.2f×", median(q.outT)/median(same.outT)), "-", "-")
	}
	t.write(w)
	fmt.Fprintln(w, "\n(the cp floor is rawga's best median over the chunk sizes, in each direction: the best of")
	fmt.Fprintln(w, "several noisy medians, so it leans high on a busy machine; more -rounds steady it)")
	if *strict && !(okRun && okIn && okOut) {
		exit(1)
	}
}

// gaProg is a program run by the ga benchmark, and its wall times.
type gaProg struct {
	name  string
	argv  []string
	times []float64 // seconds
}

// run runs p once, its output discarded, and returns its wall time in
// seconds; a failure is an error with its stderr.
func (p *gaProg) run(env []string) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*runTimeout)
	defer cancel()
	var errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, p.argv[0], p.argv[1:]...)
	cmd.Env = env
	cmd.Stderr = &errOut
	t0 := time.Now()
	err := cmd.Run()
	wall := time.Since(t0).Seconds()
	if err != nil {
		return 0, fmt.Errorf("%s: %v: %s", p.name, err, bytes.TrimSpace(errOut.Bytes()))
	}
	return wall, nil
}

// agentVersion is "qemu-ga 7.2.22", from its --version.
func agentVersion(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "qemu-ga ?"
	}
	f := strings.Fields(string(out))
	return "qemu-ga " + f[len(f)-1]
}
