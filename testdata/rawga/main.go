// Rawga is the floor of qmpsh ga's benchmarks (cmd/qmpsh-bench ga): the
// least a Go program can do for the same exchanges with the guest agent.
// Standard library only; replies are found by scanning, not decoded as
// JSON, except for the base64 of file data and program output.
//
//	rawga run SOCK PROGRAM         # guest-exec, poll guest-exec-status, print stdout, exit with its code
//	rawga in SOCK LOCAL GUEST N    # copy LOCAL into the guest, N bytes per guest-file-write
//	rawga out SOCK GUEST LOCAL N   # copy a guest file out, N bytes per guest-file-read
//
// Each synchronises first (0xFF, guest-sync-delimited), as any client of
// an agent must. run polls as qmpsh does: at once, then after 0.5 ms,
// doubling up to 200 ms.
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) < 4 {
		usage()
	}
	conn, err := net.Dial("unix", os.Args[2])
	check(err)
	defer conn.Close()
	r := bufio.NewReaderSize(conn, 1<<20)
	check(sync(conn, r))
	switch os.Args[1] {
	case "run":
		os.Exit(run(conn, r, os.Args[3]))
	case "in", "out":
		if len(os.Args) != 6 {
			usage()
		}
		n, err := strconv.Atoi(os.Args[5])
		check(err)
		if os.Args[1] == "in" {
			copyIn(conn, r, os.Args[3], os.Args[4], n)
		} else {
			copyOut(conn, r, os.Args[3], os.Args[4], n)
		}
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: rawga run SOCK PROGRAM | rawga in SOCK LOCAL GUEST N | rawga out SOCK GUEST LOCAL N")
	os.Exit(2)
}

func sync(conn net.Conn, r *bufio.Reader) error {
	if _, err := conn.Write([]byte("\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":987654321}}\n")); err != nil {
		return err
	}
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if i := bytes.LastIndexByte(line, 0xff); i >= 0 && bytes.Contains(line[i:], []byte("987654321")) {
			return nil
		}
	}
}

// call writes req and returns the reply line, valid until the next read;
// an error reply is an error.
func call(conn net.Conn, r *bufio.Reader, req []byte) []byte {
	_, err := conn.Write(req)
	check(err)
	line, err := r.ReadSlice('\n')
	for err == bufio.ErrBufferFull { // a long reply: gather it
		var all []byte
		all = append(all, line...)
		for err == bufio.ErrBufferFull {
			line, err = r.ReadSlice('\n')
			all = append(all, line...)
		}
		line = all
	}
	check(err)
	if !bytes.HasPrefix(line, []byte(`{"return"`)) {
		check(fmt.Errorf("%s: %s", bytes.TrimSpace(req), bytes.TrimSpace(line)))
	}
	return line
}

// field returns the value after "name": in line, up to the next , or }.
func field(line []byte, name string) []byte {
	i := bytes.Index(line, []byte(`"`+name+`": `))
	if i < 0 {
		return nil
	}
	v := line[i+len(name)+4:]
	if j := bytes.IndexAny(v, ",}"); j >= 0 {
		v = v[:j]
	}
	return v
}

// str returns the string value of "name" in line.
func str(line []byte, name string) []byte {
	i := bytes.Index(line, []byte(`"`+name+`": "`))
	if i < 0 {
		return nil
	}
	v := line[i+len(name)+5:]
	return v[:bytes.IndexByte(v, '"')]
}

func run(conn net.Conn, r *bufio.Reader, program string) int {
	line := call(conn, r, []byte(`{"execute":"guest-exec","arguments":{"path":`+strconv.Quote(program)+`,"capture-output":true}}`+"\n"))
	pid := string(field(line, "pid"))
	req := []byte(`{"execute":"guest-exec-status","arguments":{"pid":` + pid + "}}\n")
	delay := time.Duration(0)
	for {
		if delay > 0 {
			time.Sleep(delay)
		}
		line = call(conn, r, req)
		if bytes.Contains(line, []byte(`"exited": true`)) {
			out, err := base64.StdEncoding.DecodeString(string(str(line, "out-data")))
			check(err)
			os.Stdout.Write(out)
			code, _ := strconv.Atoi(string(field(line, "exitcode")))
			return code
		}
		switch {
		case delay == 0:
			delay = 500 * time.Microsecond
		case delay < 200*time.Millisecond:
			delay = min(2*delay, 200*time.Millisecond)
		}
	}
}

func open(conn net.Conn, r *bufio.Reader, path, mode string) string {
	line := call(conn, r, []byte(`{"execute":"guest-file-open","arguments":{"path":`+strconv.Quote(path)+`,"mode":"`+mode+`"}}`+"\n"))
	return string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(line[len(`{"return": `):]), []byte("}"))))
}

func closeFile(conn net.Conn, r *bufio.Reader, h string) {
	call(conn, r, []byte(`{"execute":"guest-file-close","arguments":{"handle":`+h+"}}\n"))
}

func copyIn(conn net.Conn, r *bufio.Reader, local, guest string, n int) {
	f, err := os.Open(local)
	check(err)
	h := open(conn, r, guest, "w")
	buf := make([]byte, n)
	prefix := `{"execute":"guest-file-write","arguments":{"handle":` + h + `,"buf-b64":"`
	req := make([]byte, 0, len(prefix)+base64.StdEncoding.EncodedLen(n)+4)
	for {
		m, err := io.ReadFull(f, buf)
		if m > 0 {
			req = append(req[:0], prefix...)
			req = base64.StdEncoding.AppendEncode(req, buf[:m])
			req = append(req, "\"}}\n"...)
			call(conn, r, req)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		check(err)
	}
	closeFile(conn, r, h)
}

func copyOut(conn net.Conn, r *bufio.Reader, guest, local string, n int) {
	f, err := os.Create(local)
	check(err)
	defer f.Close()
	h := open(conn, r, guest, "r")
	req := []byte(`{"execute":"guest-file-read","arguments":{"handle":` + h + `,"count":` + strconv.Itoa(n) + "}}\n")
	var out []byte
	for {
		line := call(conn, r, req)
		out, err = base64.StdEncoding.AppendDecode(out[:0], str(line, "buf-b64"))
		check(err)
		_, err = f.Write(out)
		check(err)
		if len(out) == 0 || bytes.Contains(line, []byte(`"eof": true`)) {
			break
		}
	}
	closeFile(conn, r, h)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "rawga:", err)
		os.Exit(1)
	}
}
