package qmptest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// Server is a fake QMP server listening on a UNIX socket in a fresh
// temporary directory.
type Server struct {
	// Addr is the path of the listening UNIX socket.
	Addr string

	dir     string
	ln      *net.UnixListener
	handler func(*Conn)

	mu     sync.Mutex
	conns  map[*Conn]struct{}
	closed bool

	wg        sync.WaitGroup
	closeOnce sync.Once
}

// NewServer starts a server that runs handler, in its own goroutine, for
// every accepted connection. The connection is closed when handler returns.
//
// Like httptest.NewServer it panics when it cannot listen, because a test
// cannot do anything useful without its server.
func NewServer(handler func(c *Conn)) *Server {
	dir, err := shortTempDir("qmptest")
	if err != nil {
		panic("qmptest: " + err.Error())
	}
	addr := filepath.Join(dir, "qmp.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: addr, Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		panic("qmptest: " + err.Error())
	}
	s := &Server{
		Addr:    addr,
		dir:     dir,
		ln:      ln,
		handler: handler,
		conns:   make(map[*Conn]struct{}),
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			// Accept on a UNIX socket fails only when the listener is
			// closed or the process is out of descriptors; neither is
			// worth retrying in a test.
			return
		}
		c := newConn(nc)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			s.handler(c)
		}()
	}
}

// Close stops listening, closes every open connection, and waits for all
// handler goroutines to return. It is idempotent.
//
// A handler blocked in ReadRequest or a write returns promptly because its
// connection is closed under it; a handler blocked on anything else should
// also select on Conn.Done.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		conns := make([]*Conn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		s.ln.Close()
		for _, c := range conns {
			c.Close()
		}
		s.wg.Wait()
		os.RemoveAll(s.dir)
	})
}

// shortTempDir makes a fresh temporary directory whose socket paths fit
// the 108-byte sun_path limit even when TMPDIR is long.
func shortTempDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err == nil && len(dir) > 80 {
		os.RemoveAll(dir)
		dir, err = os.MkdirTemp("/tmp", prefix)
	}
	return dir, err
}

// maxRequestSize bounds how much of one request the server buffers. QEMU
// has a similar limit (64 MiB per token), so a client cannot make either
// grow without bound. It is a variable so that a test can lower it.
var maxRequestSize = 64 << 20

// Conn is one client connection as seen by the server. Its methods are
// safe for concurrent use by the handler's goroutines: writes are
// serialized, so every message reaches the client whole.
type Conn struct {
	nc net.Conn

	rmu sync.Mutex // serializes ReadRequest
	r   *bufio.Reader

	wmu sync.Mutex // guards w and offered
	w   *bufio.Writer
	// offered records the capabilities of the last greeting, so that Serve
	// can tell which ones a client may enable.
	offered []string
	greeted bool

	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

func newConn(nc net.Conn) *Conn {
	c := &Conn{nc: nc, done: make(chan struct{})}
	c.w = bufio.NewWriterSize(nc, 64<<10)
	c.r = bufio.NewReaderSize(flushingReader{c}, 64<<10)
	return c
}

// flushingReader flushes pending output before every read of the socket.
// The bufio.Reader above it reads the socket only when it has run out of
// buffered input, which is exactly when the client may be waiting for the
// replies written so far. That lets Serve answer pipelined requests with
// one write instead of one per reply.
type flushingReader struct{ c *Conn }

func (f flushingReader) Read(p []byte) (int, error) {
	f.c.flush()
	return f.c.nc.Read(p)
}

func (c *Conn) flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.w.Buffered() == 0 {
		return nil
	}
	return c.w.Flush()
}

// write sends one complete message. Messages written by Serve in answer to
// a request leave flushing to flushingReader; everything else flushes at
// once, because a test handler expects the client to see what it wrote.
func (c *Conn) write(b []byte, flush bool) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := c.w.Write(b); err != nil {
		return err
	}
	if flush {
		return c.w.Flush()
	}
	return nil
}

// Done returns a channel that is closed when the connection is closed, by
// Close, by Server.Close or because the handler returned. Handlers that
// wait on something other than the connection should select on it, or
// Server.Close would wait for them forever.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Close closes the connection; the client sees EOF, or a reset if it still
// had data in flight. It does not flush, so that it never waits behind a
// writer blocked on a client that stopped reading.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		close(c.done)
		c.closeErr = c.nc.Close()
	})
	return c.closeErr
}

// GreetingVersion is the QEMU version that Greet announces.
const GreetingVersion = `{"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7"}`

// Greet writes the greeting of QEMU 7.2, which offers the oob capability.
func (c *Conn) Greet() error { return c.GreetWith("oob") }

// GreetWith writes a greeting that offers exactly these capabilities, for
// testing clients against older or future servers.
func (c *Conn) GreetWith(capabilities ...string) error {
	if capabilities == nil {
		capabilities = []string{}
	}
	caps, err := json.Marshal(capabilities)
	if err != nil {
		return err
	}
	b := make([]byte, 0, 160)
	b = append(b, `{"QMP": {"version": `...)
	b = append(b, GreetingVersion...)
	b = append(b, `, "capabilities": `...)
	b = append(b, caps...)
	b = append(b, "}}\r\n"...)
	c.wmu.Lock()
	c.offered = append([]string(nil), capabilities...)
	c.greeted = true
	c.wmu.Unlock()
	return c.write(b, true)
}

func (c *Conn) offers(capability string) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for _, o := range c.offered {
		if o == capability {
			return true
		}
	}
	return false
}

// Reply writes a successful reply, {"return": ret, "id": id}. The id is
// omitted when nil, as QEMU does for requests without one; a nil ret is
// sent as {}, which is what QEMU returns for commands without a result. A
// json.RawMessage ret is sent byte for byte, so tests can check that a
// client preserves it.
func (c *Conn) Reply(id json.RawMessage, ret any) error {
	r, err := marshalValue(ret)
	if err != nil {
		return err
	}
	if id != nil && !json.Valid(id) {
		return fmt.Errorf("qmptest: id %q is not JSON", id)
	}
	return c.write(appendReturn(nil, id, r), true)
}

// ReplyError writes an error reply, {"id": id, "error": {"class": class,
// "desc": desc}}. The id is omitted when nil, as QEMU does when it could
// not find one, for example after a JSON parse error.
func (c *Conn) ReplyError(id json.RawMessage, class, desc string) error {
	if id != nil && !json.Valid(id) {
		return fmt.Errorf("qmptest: id %q is not JSON", id)
	}
	return c.write(appendError(nil, id, class, desc), true)
}

// Event writes an event with the current time as its timestamp. The data
// member is omitted when data is nil, as for QEMU events without data.
func (c *Conn) Event(name string, data any) error {
	var d []byte
	if data != nil {
		var err error
		if d, err = marshalValue(data); err != nil {
			return err
		}
	}
	return c.write(appendEvent(nil, time.Now(), quote(name), d), true)
}

// WriteRaw writes exactly b and flushes it, for faults no well-behaved
// server produces: garbage, half lines, oversize messages.
func (c *Conn) WriteRaw(b []byte) error { return c.write(b, true) }

// Answer reads requests and hands each to answer, until the connection
// ends or answer returns false; qmp_capabilities it answers itself, with
// {}. It is the loop of a handler that answers a few commands its own
// way, after Greet.
func (c *Conn) Answer(answer func(req *Request) (more bool)) {
	for {
		req, err := c.ReadRequest()
		if err != nil {
			return
		}
		if req.Execute == "qmp_capabilities" {
			c.Reply(req.ID, map[string]any{})
			continue
		}
		if !answer(req) {
			return
		}
	}
}

func marshalValue(v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return []byte("{}"), nil
	case json.RawMessage:
		if !json.Valid(v) {
			return nil, fmt.Errorf("qmptest: %q is not JSON", []byte(v))
		}
		return v, nil
	}
	return json.Marshal(v)
}

// The writers below lay messages out the way QEMU 7.2 does (member order
// and ", "/": " separators), so that byte-level expectations written
// against the fake also hold against QEMU.

func appendReturn(b, id, ret []byte) []byte {
	b = append(b, `{"return": `...)
	b = append(b, ret...)
	if id != nil {
		b = append(b, `, "id": `...)
		b = append(b, id...)
	}
	return append(b, "}\r\n"...)
}

func appendError(b, id []byte, class, desc string) []byte {
	b = append(b, '{')
	if id != nil {
		b = append(b, `"id": `...)
		b = append(b, id...)
		b = append(b, ", "...)
	}
	b = append(b, `"error": {"class": `...)
	b = append(b, quote(class)...)
	b = append(b, `, "desc": `...)
	b = append(b, quote(desc)...)
	return append(b, "}}\r\n"...)
}

func appendEvent(b []byte, t time.Time, quotedName, data []byte) []byte {
	b = append(b, `{"timestamp": {"seconds": `...)
	b = strconv.AppendInt(b, t.Unix(), 10)
	b = append(b, `, "microseconds": `...)
	b = strconv.AppendInt(b, int64(t.Nanosecond()/1000), 10)
	b = append(b, `}, "event": `...)
	b = append(b, quotedName...)
	if data != nil {
		b = append(b, `, "data": `...)
		b = append(b, data...)
	}
	return append(b, "}\r\n"...)
}

func quote(s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return b
}

// Request is one request read from the client.
type Request struct {
	// Execute is the command of an in-band request.
	Execute string
	// ExecOOB is the command of an out-of-band request ("exec-oob").
	ExecOOB string
	// Arguments is the "arguments" member, nil when absent.
	Arguments json.RawMessage
	// ID is the "id" member verbatim, nil when absent. A JSON null id is
	// present and must be echoed, so it is not nil.
	ID json.RawMessage
	// Raw holds the bytes of the request as the client sent them.
	Raw []byte

	// members keeps the whole object so that Serve can reject malformed
	// requests with QEMU's messages.
	members map[string]json.RawMessage
}

// Command returns the command name, whichever of execute and exec-oob
// carried it.
func (r *Request) Command() string {
	if r.Execute != "" {
		return r.Execute
	}
	return r.ExecOOB
}

// MalformedError is returned by ReadRequest for input that is not a JSON
// object. The connection stays usable, as with QEMU, which answers such
// input with an error that has no id and then reads on.
type MalformedError struct {
	// Raw holds the offending bytes (truncated for oversize input).
	Raw []byte
	// Desc is what QEMU would put in the error's desc member, such as
	// "JSON parse error, ..." or "QMP input must be a JSON object".
	Desc string
}

func (e *MalformedError) Error() string { return e.Desc }

// ReadRequest reads the next JSON value from the client's stream. Requests
// need no separator between them, as with QEMU, which parses its input as
// a JSON stream rather than as lines.
//
// It returns io.EOF when the client closed the connection between
// requests, io.ErrUnexpectedEOF when it closed in the middle of one, a
// *MalformedError for input that is not a JSON object, and an error
// matching net.ErrClosed once the connection has been closed on the
// server side.
func (c *Conn) ReadRequest() (*Request, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	raw, kind, err := c.readValue()
	if err != nil {
		return nil, err
	}
	switch kind {
	case valueObject:
		var members map[string]json.RawMessage
		if err := json.Unmarshal(raw, &members); err != nil {
			return nil, &MalformedError{Raw: raw, Desc: "JSON parse error, " + err.Error()}
		}
		req := &Request{Raw: raw, members: members, Arguments: members["arguments"], ID: members["id"]}
		if v, ok := members["execute"]; ok {
			json.Unmarshal(v, &req.Execute) // a non-string is reported by Serve
		}
		if v, ok := members["exec-oob"]; ok {
			json.Unmarshal(v, &req.ExecOOB)
		}
		return req, nil
	case valueTooBig:
		return nil, &MalformedError{Raw: raw, Desc: "JSON parse error, request too large"}
	case valueStray:
		return nil, &MalformedError{Raw: raw, Desc: "JSON parse error, expecting value"}
	default:
		if json.Valid(raw) {
			return nil, &MalformedError{Raw: raw, Desc: "QMP input must be a JSON object"}
		}
		if kind != valueToken {
			var v any
			err := json.Unmarshal(raw, &v)
			return nil, &MalformedError{Raw: raw, Desc: "JSON parse error, " + err.Error()}
		}
		return nil, &MalformedError{Raw: raw, Desc: fmt.Sprintf("JSON parse error, invalid keyword '%s'", raw)}
	}
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\r' || b == '\n' }

// valueKind classifies what readValue split off the stream.
type valueKind int

const (
	valueObject valueKind = iota
	valueArray
	valueString
	valueToken  // a number, a keyword or garbage
	valueStray  // a closing bracket or separator where a value should start
	valueTooBig // longer than maxRequestSize
)

// readValue splits the next value off the stream without parsing it, the
// way QEMU's JSON streamer does: an object or array ends when its brackets
// balance, a bare token at the next delimiter. Splitting before parsing is
// what lets the stream recover after garbage, which a json.Decoder cannot.
func (c *Conn) readValue() ([]byte, valueKind, error) {
	var first byte
	for {
		b, err := c.r.ReadByte()
		if err != nil {
			return nil, 0, err
		}
		if !isSpace(b) {
			c.r.UnreadByte()
			first = b
			break
		}
	}
	switch first {
	case '}', ']', ',', ':':
		c.r.Discard(1)
		return []byte{first}, valueStray, nil
	case '{':
		return c.scanComposite(valueObject)
	case '[':
		return c.scanComposite(valueArray)
	case '"':
		return c.scanComposite(valueString)
	default:
		return c.scanToken()
	}
}

// scanComposite reads an object, an array or a top-level string.
func (c *Conn) scanComposite(kind valueKind) ([]byte, valueKind, error) {
	var out []byte
	depth, inStr, esc, tooBig := 0, false, false, false
	for {
		if c.r.Buffered() == 0 {
			if _, err := c.r.Peek(1); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return nil, 0, err
			}
		}
		buf, _ := c.r.Peek(c.r.Buffered())
		end := -1
		for i, ch := range buf {
			if inStr {
				switch {
				case esc:
					esc = false
				case ch == '\\':
					esc = true
				case ch == '"':
					inStr = false
				}
				if !inStr && depth == 0 {
					end = i + 1 // a top-level string
				}
			} else {
				switch ch {
				case '"':
					inStr = true
				case '{', '[':
					depth++
				case '}', ']':
					depth--
					if depth == 0 {
						end = i + 1
					}
				}
			}
			if end >= 0 {
				break
			}
		}
		n := len(buf)
		if end >= 0 {
			n = end
		}
		if !tooBig && len(out)+n > maxRequestSize {
			tooBig = true
		}
		if !tooBig {
			out = append(out, buf[:n]...)
		}
		c.r.Discard(n)
		if end >= 0 {
			if tooBig {
				return out[:min(len(out), 64)], valueTooBig, nil
			}
			return out, kind, nil
		}
	}
}

// scanToken reads a bare token such as a number, a keyword or garbage. Like
// QEMU it cannot know the token has ended before it sees a delimiter.
func (c *Conn) scanToken() ([]byte, valueKind, error) {
	var out []byte
	tooBig := false
	for {
		b, err := c.r.ReadByte()
		if err != nil {
			if err == io.EOF && len(out) > 0 {
				break
			}
			return nil, 0, err
		}
		if isSpace(b) || b == '{' || b == '}' || b == '[' || b == ']' || b == ',' || b == ':' || b == '"' {
			c.r.UnreadByte()
			break
		}
		if len(out) >= maxRequestSize {
			tooBig = true // read on to the delimiter, keeping nothing
			continue
		}
		out = append(out, b)
	}
	if tooBig {
		return out[:min(len(out), 64)], valueTooBig, nil
	}
	return out, valueToken, nil
}
