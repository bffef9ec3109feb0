package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// module is the module whose benchmarks and programs are built.
const module = "github.com/qmpsh/qmpsh"

// subcommands maps a name to its run function, which takes the arguments
// after the name.
var subcommands = map[string]func(args []string){
	"qemu":  qemuMain,
	"ratio": ratioMain,
	"proc":  procMain,
	"ga":    gaMain,
	"proxy": proxyMain,
}

func main() {
	if len(os.Args) < 2 || subcommands[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: qmpsh-bench qemu|ratio|proc|proxy|ga [flags]; qmpsh-bench SUBCOMMAND -h lists its flags")
		os.Exit(2)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		fail(fmt.Errorf("%v", s))
	}()
	subcommands[os.Args[1]](os.Args[2:])
	runExits()
}

// workspace returns the module's directory, wherever we are run from
// inside it, and a new temporary directory, removed at exit, for what a
// subcommand builds and runs. The directory's path is short, as a UNIX
// socket's path in it must fit in 107 bytes.
func workspace() (root, dir string) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module).Output()
	check(err)
	dir, err = os.MkdirTemp("", "qmpsh-bench")
	check(err)
	atExit(func() { os.RemoveAll(dir) })
	return strings.TrimSpace(string(out)), dir
}

// usageError reports a bad flag value of subcommand fs and exits 2.
func usageError(fs *flag.FlagSet, msg string) {
	fmt.Fprintf(os.Stderr, "%s: %s\n", fs.Name(), msg)
	exit(2)
}

// goRun runs the go command with args in dir (a module's root), its
// output going to our stderr.
func goRun(dir string, args ...string) error { return goRunEnv(dir, nil, args...) }

// goRunEnv is goRun with env (NAME=VALUE) added to our environment.
func goRunEnv(dir string, env []string, args ...string) error {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

// machine describes where the measurements ran, for the line above a
// table: the CPU, the platform, then details (Go's version, QEMU's...),
// the date and the load average before and after.
func machine(start time.Time, load string, details ...string) string {
	return fmt.Sprintf("%s, %d CPUs (GOMAXPROCS %s), %s/%s, %s, %s; load average %s",
		cpuModel(), runtime.NumCPU(), gomaxprocs(), runtime.GOOS, runtime.GOARCH,
		strings.Join(details, ", "), start.Format("2006-01-02"), load)
}

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

// goVersion is the version of the go command that builds what we
// measure, which need not be the one that built us.
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

// exits are what to undo before exiting: QEMU, temporary directories.
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

// exit runs the exits and ends the program with status code.
func exit(code int) {
	runExits()
	os.Exit(code)
}

func check(err error) {
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "qmpsh-bench:", err)
	exit(1)
}
