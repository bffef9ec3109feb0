// Qmpshlib is qmpsh's library as a benchmark program (cmd/qmpsh-bench
// qemu): it connects a qmp.Client to the UNIX socket given, and, after
// -warmup calls, times -n calls of query-status made by -callers
// goroutines sharing the client, and prints "ops/s RATE". It is a process
// of its own, as its floor (testdata/rawqmp) and its peer
// (testdata/goqemu) are, so that all three run alike.
//
//	go build ./testdata/qmpshlib
//	qmpshlib -n 10000 -callers 8 /tmp/qmp.sock
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qmpsh/qmpsh/pkg/qmp"
)

func main() {
	n := flag.Int("n", 10000, "calls to time")
	callers := flag.Int("callers", 1, "goroutines calling at once")
	warmup := flag.Int("warmup", 200, "calls before the timed ones")
	flag.Parse()
	if flag.NArg() != 1 || *callers < 1 || *n < 1 || *warmup < 0 {
		fmt.Fprintln(os.Stderr, "usage: qmpshlib [-n N] [-callers C] [-warmup W] SOCKET")
		os.Exit(2)
	}
	ctx := context.Background()
	c := qmp.NewClient()
	check(c.Connect(ctx, flag.Arg(0)))
	defer c.Disconnect()
	check(run(ctx, c, *warmup, *callers))
	start := time.Now()
	check(run(ctx, c, *n, *callers))
	fmt.Printf("ops/s %.1f\n", float64(*n)/time.Since(start).Seconds())
}

// run makes n calls from callers goroutines.
func run(ctx context.Context, c *qmp.Client, n, callers int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if _, err := c.Execute(ctx, "query-status", nil); err != nil {
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
		fmt.Fprintln(os.Stderr, "qmpshlib:", err)
		os.Exit(1)
	}
}
