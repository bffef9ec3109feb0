// Goqemu is github.com/digitalocean/go-qemu's qmp package as a benchmark
// program (cmd/qmpsh-bench qemu), the peer qmpsh's library is compared
// with. It is a module of its own, so that qmpsh does not depend on
// go-qemu. It connects a SocketMonitor to the UNIX socket given, and,
// after -warmup calls, times -n runs of query-status made by -callers
// goroutines sharing the monitor (which runs one command at a time), and
// prints "ops/s RATE". Each run marshals the command, as a caller of
// SocketMonitor.Run does, to the bytes {"execute":"query-status"}.
//
//	cd testdata/goqemu && go build
//	goqemu -n 10000 -callers 8 /tmp/qmp.sock
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

func main() {
	n := flag.Int("n", 10000, "calls to time")
	callers := flag.Int("callers", 1, "goroutines calling at once")
	warmup := flag.Int("warmup", 200, "calls before the timed ones")
	flag.Parse()
	if flag.NArg() != 1 || *callers < 1 || *n < 1 || *warmup < 0 {
		fmt.Fprintln(os.Stderr, "usage: goqemu [-n N] [-callers C] [-warmup W] SOCKET")
		os.Exit(2)
	}
	mon, err := qmp.NewSocketMonitor("unix", flag.Arg(0), 30*time.Second)
	check(err)
	check(mon.Connect())
	defer mon.Disconnect()
	check(run(mon, *warmup, *callers))
	start := time.Now()
	check(run(mon, *n, *callers))
	fmt.Printf("ops/s %.1f\n", float64(*n)/time.Since(start).Seconds())
}

// run makes n calls from callers goroutines.
func run(mon *qmp.SocketMonitor, n, callers int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				cmd, err := json.Marshal(qmp.Command{Execute: "query-status"})
				if err == nil {
					_, err = mon.Run(cmd)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "goqemu:", err)
		os.Exit(1)
	}
}
