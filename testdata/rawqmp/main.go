// Rawqmp is the floor of qmpsh's benchmarks against QEMU (cmd/qmpsh-bench):
// the least a Go program can do over QMP, sending the cheapest bytes QEMU
// answers, {"execute":"query-status"}, with no id and no newline (QEMU
// parses a JSON stream and needs neither). Standard library only, no JSON
// decoding: one line read per message, events skipped.
//
// With a socket alone, it is the floor of `qmpsh exec query-status` as a
// whole process: it reads the greeting, negotiates, runs query-status,
// prints the "return" value and exits.
//
// With -n, it is the floor of the library's throughput: after
// negotiating (with oob, when QEMU offers it, as the library does) and
// -warmup calls, it runs query-status -n times and prints
// "ops/s RATE". With -callers 1, one request at a time; with more, a
// pipelined floor, which keeps that many requests in flight on the one
// connection, writing as many new requests as replies have come, in one
// write. With -ids as well, it keeps at most two requests in flight,
// every other one with a one-digit id ({"execute":"query-status","id":N}):
// the least a client sends that never has two requests without an id in
// flight, as qmp.Client does: the floor of such a client.
//
// Built with -tags qmpshdeps (deps.go), it also links every package the
// qmpsh binary does: see cmd/qmpsh-bench proc.
//
//	go build ./testdata/rawqmp
//	rawqmp /tmp/qmp.sock
//	rawqmp -n 10000 -callers 8 /tmp/qmp.sock
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"time"
)

const request = `{"execute":"query-status"}`

func main() {
	n := flag.Int("n", 0, "calls to time (0: run query-status once and print its value)")
	callers := flag.Int("callers", 1, "requests in flight, with -n")
	warmup := flag.Int("warmup", 200, "calls before the timed ones, with -n")
	ids := flag.Bool("ids", false, "with -callers above 1: at most two requests in flight, every other one with an id")
	flag.Parse()
	if flag.NArg() != 1 || *callers < 1 || *n < 0 || *warmup < 0 {
		fmt.Fprintln(os.Stderr, "usage: rawqmp [-n N [-callers C [-ids]] [-warmup W]] SOCKET")
		os.Exit(2)
	}
	conn, err := net.Dial("unix", flag.Arg(0))
	check(err)
	defer conn.Close()
	r := bufio.NewReaderSize(conn, 64<<10)
	greeting, err := r.ReadSlice('\n')
	check(err)
	negotiate := `{"execute":"qmp_capabilities"}`
	if *n > 0 && bytes.Contains(greeting, []byte(`"oob"`)) {
		// With oob, QEMU queues requests as they come instead of
		// reading the next only once it has answered the last, and
		// answers a run of calls faster, though it negotiates slower: the
		// floor of many calls takes it, as qmp.Client does.
		negotiate = `{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}`
	}
	check(send(conn, r, negotiate))
	if *n == 0 {
		reply, err := call(conn, r, request)
		check(err)
		// {"return": VALUE}: print VALUE.
		const prefix = `{"return": `
		if !bytes.HasPrefix(reply, []byte(prefix)) {
			check(fmt.Errorf("query-status: %s", bytes.TrimSpace(reply)))
		}
		ret := bytes.TrimSuffix(bytes.TrimRight(reply[len(prefix):], "\r\n"), []byte("}"))
		os.Stdout.Write(append(ret, '\n'))
		return
	}
	run := sequential
	if *callers > 1 {
		run = pipelined
	}
	check(run(conn, r, *warmup, *callers, *ids))
	start := time.Now()
	check(run(conn, r, *n, *callers, *ids))
	fmt.Printf("ops/s %.1f\n", float64(*n)/time.Since(start).Seconds())
}

// sequential runs n calls, one at a time.
func sequential(conn net.Conn, r *bufio.Reader, n, _ int, _ bool) error {
	for range n {
		if err := send(conn, r, request); err != nil {
			return err
		}
	}
	return nil
}

// pipelined runs n calls, keeping up to depth in flight: it writes the
// first depth at once, then, each time it has read what replies there are,
// as many new requests as it read, in one write. With ids, at most two
// are in flight, and request i carries an id, i%9+1, when i is odd:
// replies come in order, so each reply lets the next request take its
// place with or without an id as it had (the replies are counted, not
// matched).
func pipelined(conn net.Conn, r *bufio.Reader, n, depth int, ids bool) error {
	if ids {
		depth = min(depth, 2)
	}
	buf := make([]byte, 0, depth*(len(request)+7))
	sent, done := 0, 0
	for done < n {
		k := min(depth-(sent-done), n-sent)
		if k > 0 {
			buf = buf[:0]
			for j := range k {
				if ids && (sent+j)%2 == 1 {
					buf = append(buf, request[:len(request)-1]...)
					buf = append(buf, `,"id":`...)
					buf = append(buf, byte('1'+(sent+j)%9), '}')
				} else {
					buf = append(buf, request...)
				}
			}
			if _, err := conn.Write(buf); err != nil {
				return err
			}
			sent += k
		}
		// Read one reply, waiting for it, then what else has come.
		for first := true; done < sent && (first || bytes.IndexByte(peekBuffered(r), '\n') >= 0); first = false {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return err
			}
			if bytes.HasPrefix(line, []byte(`{"event"`)) || bytes.HasPrefix(line, []byte(`{"timestamp"`)) {
				continue
			}
			if !bytes.HasPrefix(line, []byte(`{"return"`)) {
				return fmt.Errorf("unexpected reply: %s", bytes.TrimSpace(line))
			}
			done++
		}
	}
	return nil
}

// peekBuffered returns what r holds without reading the connection.
func peekBuffered(r *bufio.Reader) []byte {
	b, _ := r.Peek(r.Buffered())
	return b
}

// send runs cmd and checks that it returned.
func send(conn net.Conn, r *bufio.Reader, cmd string) error {
	reply, err := call(conn, r, cmd)
	if err == nil && !bytes.HasPrefix(reply, []byte(`{"return"`)) {
		err = fmt.Errorf("%s: %s", cmd, bytes.TrimSpace(reply))
	}
	return err
}

// call writes cmd and returns the next line that is not an event.
func call(conn net.Conn, r *bufio.Reader, cmd string) ([]byte, error) {
	if _, err := conn.Write([]byte(cmd)); err != nil {
		return nil, err
	}
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		if !bytes.HasPrefix(line, []byte(`{"event"`)) && !bytes.HasPrefix(line, []byte(`{"timestamp"`)) {
			return line, nil
		}
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "rawqmp:", err)
		os.Exit(1)
	}
}
