package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
)

// tooLongError ends a client whose one message outgrows the limit: like
// QEMU, the proxy does not buffer without bound.
type tooLongError struct{ max int }

func (e *tooLongError) Error() string {
	return fmt.Sprintf("message longer than %d bytes", e.max)
}

// frameReader splits a client's byte stream into top-level JSON values
// the way QEMU's JSON streamer does: no newline is needed, a value ends
// when its braces balance, and anything outside braces is a value of
// its own (a stray token, which then fails to parse). So a malformed
// value costs only itself, and the session goes on.
//
// On a UNIX socket it also collects the descriptors that come as
// SCM_RIGHTS with the bytes (see takeFiles).
type frameReader struct {
	conn net.Conn
	uc   *net.UnixConn // conn, when descriptors can come with the bytes
	buf  []byte
	r, w int // unread bytes are buf[r:w]
	max  int
	oob  []byte
	fds  []int // received, not yet taken by a command
}

func newFrameReader(conn net.Conn, max int) *frameReader {
	f := &frameReader{conn: conn, buf: make([]byte, 4096), max: max}
	if uc, ok := conn.(*net.UnixConn); ok {
		f.uc = uc
		f.oob = make([]byte, syscall.CmsgSpace(maxFiles*4))
	}
	return f
}

// maxFiles bounds the descriptors a client may have received and not
// yet used; more are closed at once (QEMU's getfd takes one).
const maxFiles = 16

// next returns the next value, valid until the following call.
func (f *frameReader) next() ([]byte, error) {
	for {
		// Whitespace between values is nobody's.
		for f.r < f.w && isSpace(f.buf[f.r]) {
			f.r++
		}
		if f.r < f.w {
			if n := valueEnd(f.buf[f.r:f.w]); n > f.max {
				return nil, &tooLongError{f.max}
			} else if n > 0 {
				v := f.buf[f.r : f.r+n]
				f.r += n
				return v, nil
			}
			if f.w-f.r > f.max {
				return nil, &tooLongError{f.max}
			}
		}
		if err := f.fill(); err != nil {
			return nil, err
		}
	}
}

func (f *frameReader) fill() error {
	if f.r == f.w && len(f.buf) > 64<<10 {
		// A big message is gone: do not keep its buffer for an idle
		// client.
		f.buf, f.r, f.w = make([]byte, 4096), 0, 0
	}
	if f.r > 0 {
		f.w = copy(f.buf, f.buf[f.r:f.w])
		f.r = 0
	}
	if f.w == len(f.buf) {
		f.buf = append(f.buf, make([]byte, len(f.buf))...)
	}
	if f.uc == nil {
		n, err := f.conn.Read(f.buf[f.w:])
		f.w += n
		if n > 0 {
			return nil
		}
		if err == nil {
			err = io.ErrNoProgress
		}
		return err
	}
	n, oobn, _, _, err := f.uc.ReadMsgUnix(f.buf[f.w:], f.oob)
	f.w += n
	if oobn > 0 {
		f.keepFiles(f.oob[:oobn])
	}
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.EOF
	}
	return err
}

func (f *frameReader) keepFiles(oob []byte) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return
	}
	for _, m := range msgs {
		fds, err := syscall.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if len(f.fds) >= maxFiles {
				syscall.Close(fd)
				continue
			}
			f.fds = append(f.fds, fd)
		}
	}
}

// takeFiles hands over the descriptors received so far.
func (f *frameReader) takeFiles() []int {
	fds := f.fds
	f.fds = nil
	return fds
}

// closeFiles closes the descriptors nobody took.
func (f *frameReader) closeFiles() {
	for _, fd := range f.takeFiles() {
		syscall.Close(fd)
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// isDelim ends a bare token (a number, a keyword, garbage).
func isDelim(c byte) bool {
	return isSpace(c) || c == '{' || c == '}' || c == '[' || c == ']' || c == '"' || c == '\'' || c == ',' || c == ':'
}

// valueEnd returns the length of the complete value that b starts with
// (b[0] is not a space), or 0 when more bytes are needed. A closing
// bracket outside any value is a value of one byte (which fails to
// parse, as in QEMU). A string may be in single quotes, as QEMU's lexer
// takes it: a brace inside one is no brace.
func valueEnd(b []byte) int {
	switch b[0] {
	case '{', '[':
		depth := 0
		for i := 0; i < len(b); i++ {
			switch b[i] {
			case '"', '\'':
				n := stringEnd(b[i:])
				if n == 0 {
					return 0
				}
				i += n - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return 0
	case '}', ']', ',', ':':
		return 1
	case '"', '\'':
		return stringEnd(b)
	}
	for i := 1; i < len(b); i++ {
		if isDelim(b[i]) {
			return i
		}
	}
	return 0
}

// stringEnd returns the length of the string b starts with, quotes
// included, or 0 when it is not complete yet. b[0] is its quote: a
// double quote, or a single one as QEMU's lexer takes it.
func stringEnd(b []byte) int {
	for i := 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case b[0]:
			return i + 1
		}
	}
	return 0
}

// member is one top-level member of a JSON object: its key (without
// quotes, unescaped only when it had no escapes) and where it lies.
type member struct {
	key        []byte
	start, end int // the member, key to value
	vstart     int // the value
	sep        int // the comma before the member, or -1
}

var errNotObject = errors.New("not an object")

// members calls fn for each top-level member of the object msg, which
// must be valid JSON (it is QEMU's output or was checked). It is how the
// proxy finds and replaces an id without decoding a whole reply.
func members(msg []byte, fn func(m member) bool) error {
	i := skipSpace(msg, 0)
	if i >= len(msg) || msg[i] != '{' {
		return errNotObject
	}
	i++
	sep := -1
	for {
		i = skipSpace(msg, i)
		if i >= len(msg) {
			return errNotObject
		}
		switch msg[i] {
		case '}':
			return nil
		case ',':
			sep = i
			i++
			continue
		case '"':
		default:
			return errNotObject
		}
		n := stringEnd(msg[i:])
		if n == 0 {
			return errNotObject
		}
		m := member{key: msg[i+1 : i+n-1], start: i, sep: sep}
		i = skipSpace(msg, i+n)
		if i >= len(msg) || msg[i] != ':' {
			return errNotObject
		}
		i = skipSpace(msg, i+1)
		if i >= len(msg) {
			return errNotObject
		}
		m.vstart = i
		n = valueEnd(msg[i:])
		if n == 0 {
			return errNotObject
		}
		i += n
		m.end = i
		if !fn(m) {
			return nil
		}
		sep = -1
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// replaceMember returns msg with m's value replaced by v, or, when v is
// nil, with the member and one comma next to it removed. msg is not
// changed.
func replaceMember(msg []byte, m member, v []byte) []byte {
	out := make([]byte, 0, len(msg)+len(v))
	if v != nil {
		out = append(out, msg[:m.vstart]...)
		out = append(out, v...)
		return append(out, msg[m.end:]...)
	}
	start, end := m.start, m.end
	if m.sep >= 0 {
		start = m.sep
	} else if j := skipSpace(msg, end); j < len(msg) && msg[j] == ',' {
		end = skipSpace(msg, j+1)
	}
	out = append(out, msg[:start]...)
	return append(out, msg[end:]...)
}
