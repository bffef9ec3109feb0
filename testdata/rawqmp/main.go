// Rawqmp is the floor of qmpsh exec's whole-process benchmark
// (cmd/qmpsh-bench proc): the least a Go program can do to run query-status
// over QMP. It dials the UNIX socket given as its argument, reads the
// greeting, negotiates with qmp_capabilities, runs query-status, prints
// the "return" value and exits. Standard library only, no JSON decoding:
// one line per message, events skipped.
//
//	go build ./testdata/rawqmp
//	rawqmp /tmp/qmp.sock
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: rawqmp SOCKET")
		os.Exit(2)
	}
	conn, err := net.Dial("unix", os.Args[1])
	check(err)
	defer conn.Close()
	r := bufio.NewReader(conn)
	_, err = r.ReadSlice('\n') // the greeting
	check(err)
	check(send(conn, r, `{"execute":"qmp_capabilities"}`))
	reply, err := call(conn, r, `{"execute":"query-status"}`)
	check(err)
	// {"return": VALUE}: print VALUE.
	const prefix = `{"return": `
	if !bytes.HasPrefix(reply, []byte(prefix)) {
		check(fmt.Errorf("query-status: %s", bytes.TrimSpace(reply)))
	}
	ret := bytes.TrimSuffix(bytes.TrimRight(reply[len(prefix):], "\r\n"), []byte("}"))
	os.Stdout.Write(append(ret, '\n'))
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
	if _, err := conn.Write([]byte(cmd + "\n")); err != nil {
		return nil, err
	}
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		if !bytes.HasPrefix(line, []byte(`{"event"`)) {
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
