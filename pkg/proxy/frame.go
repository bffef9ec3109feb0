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
	lx         lexer // the message at buf[r:] so far
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
			if n, stray := f.lx.scan(f.buf[f.r:f.w]); n > f.max {
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
	var lx lexer
	return lx.scan(b)
}

// lexer reads a message as QEMU's lexer does, a byte at a time, in the
// states of its table, and keeps where it got in a message that has not
// all come: scanning on from there, not from the start, keeps a message
// that comes a byte at a time from costing time quadratic in its length.
type lexer struct {
	i                int      // the next byte to read
	start            int      // where the token being read begins
	state            lexState // within that token; lexStart between tokens
	quote            byte     // of the string being read
	braces, brackets int
}

type lexState uint8

const (
	lexStart lexState = iota
	lexString
	lexEscape       // after a backslash in a string
	lexKeyword      // [a-z]+, checked by the parser
	lexSign         // -
	lexZero         // a lone 0: no more digits, no exponent
	lexDigits       // [1-9][0-9]*
	lexPoint        // a point, a digit needed
	lexFraction     // the digits after the point
	lexExponent     // e or E, a sign or a digit needed
	lexExponentSign // a digit needed
	lexExponentDigits
)

// scan is lexMessage from where the last scan of the same message (b
// grown since, at its end) stopped. It starts over after a message.
func (lx *lexer) scan(b []byte) (n, stray int) {
	for lx.i < len(b) {
		c := b[lx.i]
		switch lx.state {
		case lexStart:
			lx.start = lx.i
			switch {
			case isSpace(c):
				lx.i++
				continue
			case c == '"' || c == '\'':
				lx.state, lx.quote = lexString, c
			case c == '-':
				lx.state = lexSign
			case c == '0':
				lx.state = lexZero
			case '1' <= c && c <= '9':
				lx.state = lexDigits
			case 'a' <= c && c <= 'z':
				lx.state = lexKeyword
			case c == '{':
				lx.braces++
			case c == '}':
				lx.braces--
			case c == '[':
				lx.brackets++
			case c == ']':
				lx.brackets--
			case c == ',' || c == ':':
			default:
				return lx.failed()
			}
			lx.i++
			if lx.state == lexStart && lx.ended() {
				return lx.done(lx.i, -1)
			}
			continue
		case lexString:
			switch {
			case !inString(c):
				return lx.failed()
			case c == '\\':
				lx.state = lexEscape
			case c == lx.quote:
				lx.state = lexStart
				if lx.i++; lx.ended() {
					return lx.done(lx.i, -1)
				}
				continue
			}
		case lexEscape:
			if !inString(c) {
				return lx.failed()
			}
			lx.state = lexString
		case lexKeyword:
			if 'a' <= c && c <= 'z' {
				break
			}
			if lx.state = lexStart; lx.ended() { // c is not the keyword's
				return lx.done(lx.i, -1)
			}
			continue
		default:
			next, ok := numberState(lx.state, c)
			if !ok {
				return lx.failed()
			}
			if next == lexStart { // c is not the number's
				if lx.state = lexStart; lx.ended() {
					return lx.done(lx.i, -1)
				}
				continue
			}
			lx.state = next
		}
		lx.i++
	}
	return 0, -1
}

// numberState is the state after byte c in a number, as QEMU's lexer
// reads one: -?(0|[1-9][0-9]*)(.[0-9]+)?, then [eE][+-]?[0-9]+ unless
// the whole part is a lone 0 without a fraction. lexStart says that the
// number ended before c; !ok that c cannot come next.
func numberState(s lexState, c byte) (next lexState, ok bool) {
	digit := '0' <= c && c <= '9'
	switch s {
	case lexSign:
		switch {
		case c == '0':
			return lexZero, true
		case digit:
			return lexDigits, true
		}
		return 0, false
	case lexZero:
		switch {
		case digit:
			return 0, false
		case c == '.':
			return lexPoint, true
		}
		return lexStart, true
	case lexDigits, lexFraction:
		switch {
		case digit:
			return s, true
		case c == '.' && s == lexDigits:
			return lexPoint, true
		case c == 'e' || c == 'E':
			return lexExponent, true
		}
		return lexStart, true
	case lexPoint:
		if digit {
			return lexFraction, true
		}
		return 0, false
	case lexExponent:
		switch {
		case c == '+' || c == '-':
			return lexExponentSign, true
		case digit:
			return lexExponentDigits, true
		}
		return 0, false
	case lexExponentSign:
		if digit {
			return lexExponentDigits, true
		}
		return 0, false
	default: // lexExponentDigits
		if digit {
			return s, true
		}
		return lexStart, true
	}
}

// inString reports whether QEMU's lexer takes byte c in a string.
func inString(c byte) bool { return 0x20 <= c && c <= 0xFD }

// ended reports whether the message ends with the token just read: its
// braces and brackets balance, or one closed more than was open.
func (lx *lexer) ended() bool {
	return !((lx.braces > 0 || lx.brackets > 0) && lx.braces >= 0 && lx.brackets >= 0)
}

// failed ends the message at a lexical error, the byte at i included.
func (lx *lexer) failed() (n, stray int) {
	return lx.done(lx.i+1, lx.start)
}

// done ends the message at n; the next scan starts a new one.
func (lx *lexer) done(n, stray int) (int, int) {
	*lx = lexer{}
	return n, stray
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
// are needed. A client's input is cut by lexMessage, which would do here
// too, but QEMU's output is valid JSON, and on a 207 KB reply (the
// schema) valueEnd is 2.6 times faster.
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
