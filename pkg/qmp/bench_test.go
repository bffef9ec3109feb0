package qmp_test

// Benchmarks of the client, each beside a floor measured in the same run:
// a raw net.Conn on the same server, after the same greeting and
// negotiation, that writes the exact bytes the client would write and
// reads one line per reply with bufio, with no JSON at all. The ratio of
// a client figure to its floor is the client's overhead; `make bench`
// (cmd/qmpsh-bench ratio) runs them in rounds and prints the ratios
// beside the targets:
//
//   - ExecuteSequential/{client,floor}/{fake,qemu}: one caller, one
//     command at a time: client ≥ 0.8× the floor.
//   - ExecuteParallel8/{client,floor-pipelined}/{fake,qemu}: 8 goroutines
//     sharing one connection: client ≥ 0.5× a pipelined floor, one writer
//     keeping up to 8 requests in flight (several in one write when
//     several slots are free) and a reader counting reply lines, the best
//     one connection can do.
//   - Events/{client,floor}/fake: the server emits events as fast as it
//     can: client (events received from a Listener's channel) ≥ 0.5× the
//     floor's line rate.
//
// Rates are reported as ops/s or events/s. The fake server is
// qmptest.Standard, in this process; QEMU is qemu-system-x86_64 -M none
// (its sub-benchmarks skip when QEMU is absent, unless QMPSH_REQUIRE_QEMU
// is set). The command is query-status, which QEMU answers from its main
// loop without touching a guest. QEMU runs in-band commands one at a
// time, so the parallel figures against QEMU measure how well the client
// keeps QEMU's queue full rather than any speed-up.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// benchCommand is what the Execute benchmarks run.
const benchCommand = "query-status"

// benchParallel is the number of goroutines (client) or requests in
// flight (floor) of ExecuteParallel8.
const benchParallel = 8

// benchServer is one server the benchmarks talk to.
type benchServer struct {
	name  string
	start func(b *testing.B) string // its address, starting it on first use
}

// benchServers returns the fake server (qmptest.Standard, in this
// process) and, when withQEMU, QEMU, for the sub-benchmarks of b. QEMU
// starts when a sub-benchmark first needs it, so that one that is not
// selected (-bench) costs nothing, and runs until b ends; its
// sub-benchmarks skip when QEMU is absent (or fail, under
// QMPSH_REQUIRE_QEMU), as qmptest.RequireQEMU decides.
func benchServers(b *testing.B, withQEMU bool) []benchServer {
	fake := qmptest.NewServer(qmptest.Standard)
	b.Cleanup(fake.Close)
	servers := []benchServer{{"fake", func(*testing.B) string { return fake.Addr }}}
	if withQEMU {
		var qemu string
		servers = append(servers, benchServer{"qemu", func(sub *testing.B) string {
			if qemu == "" { // sub-benchmarks run one at a time
				qemu = qmptest.StartQEMU(cleanupOn{sub, b})
			}
			return qemu
		}})
	}
	return servers
}

// cleanupOn is a sub-benchmark's testing.TB whose cleanups run when
// parent ends instead.
type cleanupOn struct {
	testing.TB
	parent testing.TB
}

func (c cleanupOn) Cleanup(f func()) { c.parent.Cleanup(f) }

// run runs f as the sub-benchmark name/srv.
func (srv benchServer) run(b *testing.B, name string, f func(b *testing.B, addr string)) {
	b.Run(name+"/"+srv.name, func(b *testing.B) { f(b, srv.start(b)) })
}

func benchContext(b *testing.B) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	b.Cleanup(cancel)
	return ctx
}

// benchClient returns a negotiated client on addr. It disconnects when the
// (sub-)benchmark ends, before the next one connects: QEMU serves one
// connection at a time.
func benchClient(b *testing.B, addr string) *qmp.Client {
	b.Helper()
	c := qmp.NewClient()
	if err := c.Connect(benchContext(b), addr); err != nil {
		b.Fatalf("Connect(%s): %v", addr, err)
	}
	b.Cleanup(func() { c.Disconnect() })
	return c
}

// rawConn is the floor's connection: no client, no JSON.
type rawConn struct {
	c net.Conn
	r *bufio.Reader
}

// dialRaw connects to addr, reads the greeting and negotiates with the
// bytes the client sends, enabling oob when the server offers it, as the
// client does, so that the server behaves the same for both.
func dialRaw(b *testing.B, addr string) *rawConn {
	b.Helper()
	c, err := net.Dial("unix", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	rc := &rawConn{c: c, r: bufio.NewReaderSize(c, 64<<10)}
	greeting := rc.line(b)
	req := `{"execute":"qmp_capabilities"}`
	if bytes.Contains(greeting, []byte(`"oob"`)) {
		req = `{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}`
	}
	if _, err := c.Write([]byte(req)); err != nil {
		b.Fatal(err)
	}
	for {
		line := rc.line(b)
		if bytes.HasPrefix(line, []byte(`{"return"`)) {
			return rc
		}
		if !bytes.HasPrefix(line, []byte(`{"timestamp"`)) {
			b.Fatalf("negotiation: %s", line)
		}
	}
}

// line reads one line; the slice is valid until the next read.
func (rc *rawConn) line(b *testing.B) []byte {
	line, err := rc.r.ReadSlice('\n')
	if err != nil {
		b.Fatalf("reading a line: %v", err)
	}
	return line
}

// reply reads one line and checks that it is a successful reply.
func (rc *rawConn) reply(b *testing.B) {
	if line := rc.line(b); !bytes.HasPrefix(line, []byte(`{"return"`)) {
		b.Fatalf("unexpected reply: %s", line)
	}
}

// appendRequest appends what the client writes for Execute(command, args)
// as its n-th call: {"execute":COMMAND[,"arguments":ARGS],"id":N},
// without the id for n = 0, as a lone call sends it, and without newline.
func appendRequest(buf []byte, command string, args []byte, n uint64) []byte {
	buf = append(buf, `{"execute":"`...)
	buf = append(buf, command...)
	buf = append(buf, '"')
	if args != nil {
		buf = append(buf, `,"arguments":`...)
		buf = append(buf, args...)
	}
	if n != 0 { // ids cycle through 1..9 while fewer than 9 calls are pending
		buf = append(buf, `,"id":`...)
		buf = strconv.AppendUint(buf, (n-1)%9+1, 10)
	}
	return append(buf, '}')
}

func reportRate(b *testing.B, unit string) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, unit)
	}
}

// BenchmarkExecuteSequential: one Execute at a time, against one write
// and one line read at a time.
func BenchmarkExecuteSequential(b *testing.B) {
	for _, srv := range benchServers(b, true) {
		srv.run(b, "client", func(b *testing.B, addr string) {
			c := benchClient(b, addr)
			ctx := benchContext(b)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.Execute(ctx, benchCommand, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			reportRate(b, "ops/s")
		})
		srv.run(b, "floor", func(b *testing.B, addr string) {
			rc := dialRaw(b, addr)
			buf := make([]byte, 0, 128)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				buf = appendRequest(buf[:0], benchCommand, nil, 0)
				if _, err := rc.c.Write(buf); err != nil {
					b.Fatal(err)
				}
				rc.reply(b)
			}
			b.StopTimer()
			reportRate(b, "ops/s")
		})
	}
}

// BenchmarkExecuteParallel8: 8 goroutines calling Execute on one client,
// against one connection kept 8 requests deep by a writer and a reader.
func BenchmarkExecuteParallel8(b *testing.B) {
	for _, srv := range benchServers(b, true) {
		srv.run(b, "client", func(b *testing.B, addr string) {
			c := benchClient(b, addr)
			ctx := benchContext(b)
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, benchParallel)
			b.ReportAllocs()
			b.ResetTimer()
			for range benchParallel {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if _, err := c.Execute(ctx, benchCommand, nil); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			reportRate(b, "ops/s")
		})
		srv.run(b, "floor-pipelined", func(b *testing.B, addr string) {
			rc := dialRaw(b, addr)
			slots := make(chan struct{}, benchParallel) // one per request in flight
			readErr := make(chan []byte, 1)
			buf := make([]byte, 0, benchParallel*64)
			b.ReportAllocs()
			b.ResetTimer()
			go func() {
				defer close(readErr)
				for range b.N {
					line, err := rc.r.ReadSlice('\n')
					if err != nil {
						readErr <- []byte(err.Error())
						return
					}
					if !bytes.HasPrefix(line, []byte(`{"return"`)) {
						readErr <- append([]byte("unexpected reply: "), line...)
						return
					}
					<-slots
				}
			}()
			for sent := 0; sent < b.N; {
				slots <- struct{}{}
				k := 1
			fill: // take every free slot, to send them in one write
				for sent+k < b.N && k < benchParallel {
					select {
					case slots <- struct{}{}:
						k++
					default:
						break fill
					}
				}
				buf = buf[:0]
				for range k {
					sent++
					buf = appendRequest(buf, benchCommand, nil, uint64(sent))
				}
				if _, err := rc.c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			if msg, failed := <-readErr; failed {
				b.Fatalf("reader: %s", msg)
			}
			b.StopTimer()
			reportRate(b, "ops/s")
		})
	}
}

// benchEventBatch is how many events one emit asks for: well below the
// Listener's backlog, so a slow consumer never loses any.
const benchEventBatch = 10000

// benchEventData is the data of every event, the size of a typical QEMU
// event's (BLOCK_JOB_COMPLETED).
var benchEventData = json.RawMessage(`{"device":"drive0","len":1073741824,"offset":1073741824,"speed":0,"type":"mirror"}`)

func emitArgs(count int) []byte {
	a, _ := json.Marshal(map[string]any{"name": "BENCH", "count": count, "data": benchEventData})
	return a
}

// BenchmarkEvents: the fake server emits events in batches; the client
// delivers each to a Listener's channel, the floor counts lines.
func BenchmarkEvents(b *testing.B) {
	srv := benchServers(b, false)[0]
	srv.run(b, "client", func(b *testing.B, addr string) {
		c := benchClient(b, addr)
		ctx := benchContext(b)
		l := c.Listen("BENCH")
		defer l.Close()
		done := make(chan error, 1)
		b.ReportAllocs()
		b.ResetTimer()
		for left := b.N; left > 0; {
			k := min(left, benchEventBatch)
			left -= k
			args := json.RawMessage(emitArgs(k))
			go func() {
				_, err := c.Execute(ctx, "emit", args)
				done <- err
			}()
			for range k {
				if ev := <-l.Events(); ev.Name != "BENCH" {
					b.Fatalf("event %q", ev.Name)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if n := l.Dropped(); n > 0 {
			b.Fatalf("%d events dropped", n)
		}
		reportRate(b, "events/s")
	})
	srv.run(b, "floor", func(b *testing.B, addr string) {
		rc := dialRaw(b, addr)
		var buf []byte
		b.ReportAllocs()
		b.ResetTimer()
		for left := b.N; left > 0; {
			k := min(left, benchEventBatch)
			left -= k
			buf = appendRequest(buf[:0], "emit", emitArgs(k), 0)
			if _, err := rc.c.Write(buf); err != nil {
				b.Fatal(err)
			}
			for range k {
				rc.line(b)
			}
			rc.reply(b)
		}
		b.StopTimer()
		reportRate(b, "events/s")
	})
}
