package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
)

// scriptConn returns its chunks to Read, a chunk in reads of at most size
// bytes (0: as much as fits), then io.EOF. Each read must come after a
// call of drained.
type scriptConn struct {
	net.Conn
	t       *testing.T
	chunks  [][]byte
	size    int
	drained bool
}

func (c *scriptConn) Read(p []byte) (int, error) {
	if !c.drained {
		c.t.Error("read without calling Drained first")
	}
	c.drained = false
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	b := c.chunks[0]
	if c.size > 0 && len(b) > c.size {
		b = b[:c.size]
	}
	n := copy(p, b)
	if c.chunks[0] = c.chunks[0][n:]; len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}

// scripted returns a session reading chunks through a scriptConn.
func scripted(t *testing.T, limit, size int, chunks ...string) *session {
	c := &scriptConn{t: t, size: size}
	for _, s := range chunks {
		c.chunks = append(c.chunks, []byte(s))
	}
	p := New(Config{MaxMessageSize: limit, Drained: func() { c.drained = true }})
	return newSession(p, c)
}

// readAll reads messages until the session's read fails.
func readAll(s *session) ([]string, error) {
	var msgs []string
	for {
		msg, err := s.read()
		if err != nil {
			return msgs, err
		}
		msgs = append(msgs, string(msg))
	}
}

// TestReadSplitLines checks that lines come out whole wherever reads cut
// them, long ones included, with blank lines skipped.
func TestReadSplitLines(t *testing.T) {
	long := strings.Repeat("L", 3*minInput+5)
	var want []string
	var data strings.Builder
	for i := range 50 {
		m := fmt.Sprintf(`{"n": %d, "pad": "%s"}`, i, strings.Repeat("p", i*37))
		if i%10 == 3 {
			m = long
		}
		want = append(want, m)
		data.WriteString(m)
		data.WriteString([]string{"\n", "\r\n", "\n\n", "\r\n\r\n"}[i%4])
	}
	for _, size := range []int{1, 2, 7, 64, 4095, minInput - 1, minInput, 0} {
		got, err := readAll(scripted(t, 1<<20, size, data.String()))
		if !errors.Is(err, ErrClosedByPeer) {
			t.Fatalf("reads of %d: error %v, want ErrClosedByPeer", size, err)
		}
		if len(got) != len(want) {
			t.Fatalf("reads of %d: %d messages, want %d", size, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("reads of %d: message %d is %.40q..., want %.40q...", size, i, got[i], want[i])
			}
		}
	}
}

// TestReadBufferSize checks that the buffer grows while reads fill it,
// no further than maxInput, and shrinks back after a run of small reads.
func TestReadBufferSize(t *testing.T) {
	line := strings.Repeat("x", 99) + "\n"
	flood := strings.Repeat(line, 4*maxInput/len(line))
	chunks := []string{flood} // read as much as fits each time
	for range 40 {
		chunks = append(chunks, line) // then a line a read
	}
	s := scripted(t, 1<<20, 0, chunks...)
	biggest := 0
	for range strings.Count(flood, "\n") {
		if _, err := s.read(); err != nil {
			t.Fatal(err)
		}
		biggest = max(biggest, len(s.rd.in.buf))
	}
	if biggest != maxInput {
		t.Errorf("buffer grew to %d bytes under a flood, want %d", biggest, maxInput)
	}
	for range 40 {
		if _, err := s.read(); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.rd.in.buf) != minInput {
		t.Errorf("buffer is %d bytes after %d small reads, want %d", len(s.rd.in.buf), 40, minInput)
	}
}

// TestReadBufferKeepsLongLines checks that lines longer than the buffer
// that arrive a little at a time, as qemu-ga writes a file's data, do not
// count as small reads: the grown buffer stays, instead of shrinking at
// every line's end and growing again, copying, for the next.
func TestReadBufferKeepsLongLines(t *testing.T) {
	line := strings.Repeat("b", 300_000) + "\n"
	for _, piece := range []int{10_000, 4096, 2048, 1448} {
		var chunks []string
		for range 6 {
			for i := 0; i < len(line); i += piece {
				chunks = append(chunks, line[i:min(i+piece, len(line))])
			}
		}
		s := scripted(t, 1<<20, 0, chunks...)
		var sizes []int
		for i := range 6 {
			msg, err := s.read()
			if err != nil || len(msg) != len(line)-1 {
				t.Fatalf("pieces of %d: line %d: %d bytes, %v", piece, i, len(msg), err)
			}
			sizes = append(sizes, len(s.rd.in.buf))
		}
		for _, n := range sizes[2:] { // grown by then
			if n < len(line) {
				t.Errorf("pieces of %d: buffer sizes after each line %v, some shorter than the lines", piece, sizes)
				break
			}
		}
	}
}

// TestReadLimitEarly checks that a line over the limit fails before the
// buffer takes more than the limit and one read of it.
func TestReadLimitEarly(t *testing.T) {
	s := scripted(t, 1000, 0, strings.Repeat("y", 10*maxInput))
	_, err := readAll(s)
	var tl *MessageTooLongError
	if !errors.As(err, &tl) {
		t.Fatalf("error %v, want *MessageTooLongError", err)
	}
	if n := len(s.rd.in.buf); n > minInput {
		t.Errorf("buffer grew to %d bytes for a line over a 1000-byte limit", n)
	}
	if _, err := readAll(scripted(t, 1000, 0, strings.Repeat("y", 1000)+"\r\n")); !errors.Is(err, ErrClosedByPeer) {
		t.Errorf("a line at the limit: %v", err)
	}
	if _, err := readAll(scripted(t, 1000, 0, "x\nhalf")); !errors.Is(err, io.ErrUnexpectedEOF) ||
		!bytes.Contains([]byte(err.Error()), []byte("(4 bytes of it read)")) {
		t.Errorf("a half line at EOF: %v", err)
	}
}

// TestPlainPeerError: a reset or a broken pipe, as Go reports them with
// both sockets' addresses, become the peer's doing in plain words, and
// errors.Is still finds the system's error; other errors pass through.
func TestPlainPeerError(t *testing.T) {
	op := func(op string, errno syscall.Errno) error {
		return &net.OpError{Op: op, Net: "unix", Addr: &net.UnixAddr{Name: "/tmp/q.sock", Net: "unix"},
			Err: os.NewSyscallError(op, errno)}
	}
	for _, tc := range []struct {
		err   error
		want  string
		errno syscall.Errno
	}{
		{op("read", syscall.ECONNRESET), "connection reset by peer", syscall.ECONNRESET},
		{op("write", syscall.EPIPE), "connection closed by peer: broken pipe", syscall.EPIPE},
		{op("read", syscall.EBADF), "read unix /tmp/q.sock: read: bad file descriptor", syscall.EBADF},
	} {
		got := plainPeerError(tc.err)
		if got.Error() != tc.want || !errors.Is(got, tc.errno) {
			t.Errorf("plainPeerError(%v) = %q; want %q, a %v", tc.err, got, tc.want, tc.errno)
		}
	}
}
