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

// frameReader splits a client's byte stream into messages the way QEMU
// 7.2's JSON lexer and streamer do (see lexMessage): no newline is
// needed, a message ends when its braces and brackets balance, and a
// lexical error ends one, after which bytes are skipped to a point where
// the lexer starts over. So a malformed message costs only itself, and
// the session goes on.
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
	// recovering: a lexical error ended the last value, and what
	// follows is skipped up to a point where QEMU's lexer starts over.
	recovering bool
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

// next returns the next message, valid until the following call. When
// a lexical error ended it, stray is where the failed token begins in it
// (QEMU's error quotes that token), and -1 otherwise.
func (f *frameReader) next() (msg []byte, stray int, err error) {
	for {
		if f.recovering {
			for f.r < f.w && !resync(f.buf[f.r]) {
				f.r++
			}
			f.recovering = f.r == f.w
		}
		// Whitespace between messages is nobody's.
		for !f.recovering && f.r < f.w && isSpace(f.buf[f.r]) {
			f.r++
		}
		if !f.recovering && f.r < f.w {
			if n, stray := lexMessage(f.buf[f.r:f.w]); n > f.max {
				return nil, -1, &tooLongError{f.max}
			} else if n > 0 {
				msg := f.buf[f.r : f.r+n]
				f.r += n
				f.recovering = stray >= 0
				return msg, stray, nil
			}
			if f.w-f.r > f.max {
				return nil, -1, &tooLongError{f.max}
			}
		}
		if err := f.fill(); err != nil {
			return nil, -1, err
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

// lexMessage returns the length of the first message QEMU 7.2's JSON
// streamer cuts from b (b[0] is not a space), tokenised as its lexer
// does (qobject/json-lexer.c): the message ends with the token that
// balances its braces and brackets (a token outside any is a message of
// its own), or one that closes more than was open, or at a lexical error:
// a byte no token starts with, a malformed number, a control character
// or a byte 0xFE or 0xFF in a string. Strings may be in single quotes.
// For a lexical error, stray is where the failed token begins in the
// message, and -1 otherwise. n is 0 while b ends too soon to tell.
//
// What follows a lexical error is a message of its own, as in QEMU, and
// meets the policy as any other does.
func lexMessage(b []byte) (n, stray int) {
	braces, brackets := 0, 0
	for i := 0; i < len(b); {
		start := i
		switch c := b[i]; {
		case isSpace(c):
			i++
			continue
		case c == '"' || c == '\'':
			end, bad := lexString(b[i:])
			if end == 0 {
				return 0, -1
			}
			if i += end; bad {
				return i, start
			}
		case c == '-' || '0' <= c && c <= '9':
			end, bad := lexNumber(b[i:])
			if end == 0 {
				return 0, -1
			}
			if i += end; bad {
				return i, start
			}
		case 'a' <= c && c <= 'z': // a keyword, checked by the parser
			for i++; i < len(b) && 'a' <= b[i] && b[i] <= 'z'; i++ {
			}
			if i == len(b) {
				return 0, -1 // it may go on
			}
		case c == '{':
			braces, i = braces+1, i+1
		case c == '}':
			braces, i = braces-1, i+1
		case c == '[':
			brackets, i = brackets+1, i+1
		case c == ']':
			brackets, i = brackets-1, i+1
		case c == ',' || c == ':':
			i++
		default:
			return i + 1, start
		}
		if (braces > 0 || brackets > 0) && braces >= 0 && brackets >= 0 {
			continue
		}
		return i, -1
	}
	return 0, -1
}

// lexString returns the length of the string b starts with, quotes
// included, and bad when a byte QEMU's lexer refuses in a string (a
// control character, 0xFE or 0xFF, escaped or not) ends it there, that
// byte included; 0 when b ends first. b[0] is its quote: double, or
// single.
func lexString(b []byte) (n int, bad bool) {
	inString := func(c byte) bool { return 0x20 <= c && c <= 0xFD }
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case !inString(c):
			return i + 1, true
		case c == '\\':
			if i++; i == len(b) {
				return 0, false
			}
			if !inString(b[i]) {
				return i + 1, true
			}
		case c == b[0]:
			return i + 1, false
		}
	}
	return 0, false
}

// lexNumber returns the length of the number b starts with ('-' or a
// digit), as QEMU's lexer reads one: -?(0|[1-9][0-9]*)(.[0-9]+)? and an
// exponent [eE][+-]?[0-9]+ after a fraction or a nonzero integer. The
// byte after it is not part of it. A byte that cannot come next in a
// number that needs one ends it badly, that byte included; n is 0 when b
// ends first.
func lexNumber(b []byte) (n int, bad bool) {
	isDigit := func(c byte) bool { return '0' <= c && c <= '9' }
	i := 0
	if b[i] == '-' {
		if i++; i == len(b) {
			return 0, false
		}
		if !isDigit(b[i]) {
			return i + 1, true
		}
	}
	zero := b[i] == '0'
	for i++; !zero && i < len(b) && isDigit(b[i]); i++ {
	}
	if i == len(b) {
		return 0, false
	}
	if zero && isDigit(b[i]) {
		return i + 1, true // no leading zeros
	}
	fraction := b[i] == '.'
	if fraction {
		if i++; i == len(b) {
			return 0, false
		}
		if !isDigit(b[i]) {
			return i + 1, true
		}
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
		if i == len(b) {
			return 0, false
		}
	}
	if (b[i] == 'e' || b[i] == 'E') && (fraction || !zero) {
		if i++; i == len(b) {
			return 0, false
		}
		if b[i] == '+' || b[i] == '-' {
			if i++; i == len(b) {
				return 0, false
			}
		}
		if !isDigit(b[i]) {
			return i + 1, true
		}
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
		if i == len(b) {
			return 0, false
		}
	}
	return i, false
}

// resync reports whether QEMU's lexer, skipping input after a lexical
// error, starts over at c: a structural character, or a control
// character other than a tab, or a byte 0xFE or 0xFF (which clients send
// to reset the parser). c itself is then read anew.
func resync(c byte) bool {
	switch c {
	case '{', '}', '[', ']', ':', ',':
		return true
	case '\t':
		return false
	}
	return c < 0x20 || c >= 0xFE
}

// isDelim ends a bare token (a number, a keyword) in QEMU's output.
func isDelim(c byte) bool {
	return isSpace(c) || c == '{' || c == '}' || c == '[' || c == ']' || c == '"' || c == ',' || c == ':'
}

// valueEnd returns the length of the complete value that b, a part of
// QEMU's output, starts with (b[0] is not a space), or 0 when more bytes
// are needed. (A client's input is cut by lexMessage.)
func valueEnd(b []byte) int {
	switch b[0] {
	case '{', '[':
		depth := 0
		for i := 0; i < len(b); i++ {
			switch b[i] {
			case '"':
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
	case '"':
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
// included, or 0 when it is not complete yet.
func stringEnd(b []byte) int {
	for i := 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
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
// must be valid JSON (it is QEMU's output). It is how the
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
