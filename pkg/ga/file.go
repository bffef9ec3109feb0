package ga

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// DefaultChunkSize is how much ReadFile and WriteFile move per request.
// qemu-ga 7.2 moves data fastest in requests of 128 KiB to 1 MiB (make
// bench measures it): larger ones cost it more than proportionally, and
// with requests pipelined, smaller ones cost the client little.
const DefaultChunkSize = 256 << 10

// closeTimeout bounds closing a guest file after the caller's context
// ended: the handle must not be left open in the agent.
const closeTimeout = 5 * time.Second

// File is an open file in the guest.
type File struct {
	c      *Client
	handle int64
	path   string
}

// OpenFile opens path in the guest with guest-file-open; mode is fopen's
// ("r", "w", "a", "r+", ...). Close it when done.
//
// If ctx ends while the agent opens the file, the agent still opens it:
// OpenFile then waits up to closeTimeout more for the handle, closes it,
// and returns ctx's error, so that no handle is left open in the guest.
func (c *Client) OpenFile(ctx context.Context, path, mode string) (*File, error) {
	pc, err := c.start(ctx, "guest-file-open", map[string]string{"path": path, "mode": mode})
	if err != nil {
		return nil, err
	}
	r, got, err := pc.awaitGrace(ctx, closeTimeout)
	if err != nil {
		if ret, verr := pc.value(r); got && verr == nil {
			var h int64
			if json.Unmarshal(ret, &h) == nil {
				(&File{c: c, handle: h, path: path}).closeAnyway(ctx)
			}
		}
		return nil, err
	}
	ret, err := pc.value(r)
	if err != nil {
		return nil, err
	}
	var h int64
	if err := json.Unmarshal(ret, &h); err != nil {
		return nil, &ProtocolError{Msg: fmt.Sprintf("guest-file-open returned %s, not a handle", truncate(ret))}
	}
	return &File{c: c, handle: h, path: path}, nil
}

// Handle returns the agent's handle for the file.
func (f *File) Handle() int64 { return f.handle }

// Read reads up to n bytes; eof says the end of the file was reached.
func (f *File) Read(ctx context.Context, n int) (data []byte, eof bool, err error) {
	ret, err := f.c.Exec(ctx, "guest-file-read", map[string]int64{"handle": f.handle, "count": int64(n)})
	if err != nil {
		return nil, false, err
	}
	var r struct {
		Count int    `json:"count"`
		Buf   []byte `json:"buf-b64"`
		EOF   bool   `json:"eof"`
	}
	if err := json.Unmarshal(ret, &r); err != nil {
		return nil, false, &ProtocolError{Msg: "guest-file-read: " + err.Error()}
	}
	return r.Buf, r.EOF, nil
}

// Write writes b whole, in as many requests as the agent needs.
func (f *File) Write(ctx context.Context, b []byte) error {
	for len(b) > 0 {
		ret, err := f.c.Exec(ctx, "guest-file-write", struct {
			Handle int64  `json:"handle"`
			Buf    []byte `json:"buf-b64"`
		}{f.handle, b})
		if err != nil {
			return err
		}
		var r struct {
			Count int `json:"count"`
		}
		if err := json.Unmarshal(ret, &r); err != nil {
			return &ProtocolError{Msg: "guest-file-write: " + err.Error()}
		}
		if r.Count <= 0 || r.Count > len(b) {
			return fmt.Errorf("writing %s in the guest: the agent wrote %d of %d bytes", f.path, r.Count, len(b))
		}
		b = b[r.Count:]
	}
	return nil
}

// Close closes the file in the guest.
func (f *File) Close(ctx context.Context) error {
	_, err := f.c.Exec(ctx, "guest-file-close", map[string]int64{"handle": f.handle})
	return err
}

// closeAnyway closes f even when ctx has ended, bounded by closeTimeout,
// so that the agent is not left holding the handle. An agent that does
// not answer (a stalled guest) gets the close all the same: when the
// synchronisation before it went unanswered, the close is written
// without one and without waiting for its reply, and the agent runs it
// when it reads it, after what it had before. (Behind a large write the
// agent has not read, the close may not fit in the connection's buffer
// within the second it is given: the file then stays open.)
func (f *File) closeAnyway(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	err := f.Close(cctx)
	var na *NoAnswerError
	if errors.As(err, &na) && strings.Contains(na.Doing, "guest-sync-delimited") {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		f.c.sendUnawaited(wctx, "guest-file-close", map[string]int64{"handle": f.handle})
	}
	return err
}

// inFlight is how many file requests ReadFile and WriteFile keep in
// flight: while the agent works on one, the client encodes or decodes
// the other, and neither waits for a round trip.
const inFlight = 2

// pipeline is a file copy's requests in flight, oldest first.
type pipeline []*pendingCall

// abandon stops waiting for the replies still due; the agent answers them
// before anything sent later (the close), and they are dropped.
func (p *pipeline) abandon() {
	for _, pc := range *p {
		pc.forget()
	}
	*p = nil
}

// next waits for the oldest request's reply.
func (p *pipeline) next(ctx context.Context) (json.RawMessage, error) {
	pc := (*p)[0]
	*p = (*p)[1:]
	return pc.result(ctx)
}

// openCopy opens the guest file path in mode for ReadFile or WriteFile.
// finish, deferred with the copy's error, abandons the requests still in
// p and closes the file whatever happened; a failure to close becomes the
// copy's error only when the copy itself succeeded.
func (c *Client) openCopy(ctx context.Context, path, mode string, p *pipeline) (f *File, finish func(*error), err error) {
	if f, err = c.OpenFile(ctx, path, mode); err != nil {
		return nil, nil, err
	}
	return f, func(err *error) {
		p.abandon()
		if cerr := f.closeAnyway(ctx); *err == nil && cerr != nil {
			*err = cerr
		}
	}, nil
}

// ReadFile copies the guest file path to w, a chunk at a time, and
// returns how many bytes it copied. progress, if set, is called with the
// running total after each chunk. The guest file is closed whatever
// happens.
func (c *Client) ReadFile(ctx context.Context, path string, w io.Writer, progress func(int64)) (n int64, err error) {
	var p pipeline
	f, finish, err := c.openCopy(ctx, path, "r", &p)
	if err != nil {
		return 0, err
	}
	defer finish(&err)
	args := map[string]int64{"handle": f.handle, "count": int64(c.chunk)}
	// The reader goroutine decodes each chunk from its read buffer into a
	// readChunk of the request's (see pendingCall.decode); chunks written
	// out are reused, their buffers with them.
	var chunks, spare []*readChunk // chunks: p's, oldest first
	eof := false
	for !eof || len(p) > 0 {
		// The reads after the end of the file come back empty.
		for !eof && len(p) < inFlight {
			ck := new(readChunk)
			if k := len(spare); k > 0 {
				ck, spare = spare[k-1], spare[:k-1]
				*ck = readChunk{data: ck.data[:0]}
			}
			pc, err := c.startDecoded(ctx, "guest-file-read", args, ck.decode)
			if err != nil {
				return n, err
			}
			p, chunks = append(p, pc), append(chunks, ck)
		}
		ret, err := p.next(ctx)
		ck := chunks[0]
		chunks = chunks[1:]
		if err != nil {
			return n, err
		}
		if !ck.done { // a reply in another layout: its value came whole
			ck.decode(ret)
		}
		data, last := ck.data, ck.eof
		if ck.err != nil {
			return n, ck.err
		}
		spare = append(spare, ck)
		if len(data) > 0 {
			if _, err := w.Write(data); err != nil {
				return n, err
			}
			n += int64(len(data))
			if progress != nil {
				progress(n)
			}
		}
		if last || len(data) == 0 {
			eof = true
		}
	}
	return n, nil
}

// readChunk is one guest-file-read reply's decoded data.
type readChunk struct {
	data []byte
	eof  bool
	err  error
	done bool // decode ran
}

// decode decodes ret, a guest-file-read return value, into ck.
func (ck *readChunk) decode(ret []byte) {
	ck.data, ck.eof, ck.err = decodeRead(ret, ck.data)
	ck.done = true
}

// WriteFile copies r into the guest file path, created or truncated, a
// chunk at a time, and returns how many bytes it copied. progress is as
// for ReadFile. The guest file is closed whatever happens. The first chunk
// is read before the guest file is opened: an r that cannot be read at
// all (a directory, an I/O error) leaves the guest file as it was.
func (c *Client) WriteFile(ctx context.Context, path string, r io.Reader, progress func(int64)) (n int64, err error) {
	buf := make([]byte, c.chunk)
	m, rerr := io.ReadFull(r, buf)
	if rerr != nil && !errors.Is(rerr, io.EOF) && !errors.Is(rerr, io.ErrUnexpectedEOF) {
		return 0, rerr
	}
	var p pipeline
	f, finish, err := c.openCopy(ctx, path, "w", &p)
	if err != nil {
		return 0, err
	}
	defer finish(&err)
	var args []byte // a write's arguments, the buffer reused
	var sizes []int // of the writes in flight
	// done takes the oldest write's reply.
	done := func() error {
		ret, err := p.next(ctx)
		if err != nil {
			return err
		}
		want := sizes[0]
		sizes = sizes[1:]
		var w struct {
			Count int `json:"count"`
		}
		if err := json.Unmarshal(ret, &w); err != nil {
			return &ProtocolError{Msg: "guest-file-write: " + err.Error()}
		}
		if w.Count != want {
			return fmt.Errorf("writing %s in the guest: the agent wrote %d of %d bytes", path, w.Count, want)
		}
		n += int64(want)
		if progress != nil {
			progress(n)
		}
		return nil
	}
	for ; ; m, rerr = io.ReadFull(r, buf) {
		if m > 0 {
			if len(p) == inFlight {
				if err := done(); err != nil {
					return n, err
				}
			}
			// The request holds its own copy of buf, base64-encoded.
			args = append(strconv.AppendInt(append(args[:0], `{"handle":`...), f.handle, 10), `,"buf-b64":"`...)
			args = append(base64.StdEncoding.AppendEncode(args, buf[:m]), `"}`...)
			pc, err := c.start(ctx, "guest-file-write", preEncoded(args))
			if err != nil {
				return n, err
			}
			p = append(p, pc)
			sizes = append(sizes, m)
		}
		switch {
		case errors.Is(rerr, io.EOF), errors.Is(rerr, io.ErrUnexpectedEOF):
			for len(p) > 0 {
				if err := done(); err != nil {
					return n, err
				}
			}
			return n, nil
		case rerr != nil:
			return n, rerr
		}
	}
}

// decodeRead decodes guest-file-read's return value into dst's buffer:
// the data and whether the end of the file was reached. qemu-ga writes
// {"count": N, "buf-b64": "...", "eof": B}; base64 needs no JSON escapes,
// so the string is decoded where it lies, without a copy. Anything else
// is decoded as JSON.
func decodeRead(ret, dst []byte) (data []byte, eof bool, err error) {
	key := []byte(`"buf-b64": "`)
	if i := bytes.Index(ret, key); i >= 0 {
		k := i + len(key)
		s := ret[k:]
		if j := bytes.IndexByte(s, '"'); j >= 0 && bytes.IndexByte(s[:j], '\\') < 0 {
			// ret with the data left out is short: decoded whole, it
			// gives eof, and with the data valid base64, ret is the
			// JSON object it looks like.
			rest := append(ret[:k:k], s[j:]...)
			var r struct {
				EOF bool `json:"eof"`
			}
			if json.Unmarshal(rest, &r) == nil {
				if data, err = base64.StdEncoding.AppendDecode(dst[:0], s[:j]); err == nil {
					return data, r.EOF, nil
				}
			}
		}
	}
	var r struct {
		Buf []byte `json:"buf-b64"`
		EOF bool   `json:"eof"`
	}
	if err := json.Unmarshal(ret, &r); err != nil {
		return nil, false, &ProtocolError{Msg: "guest-file-read: " + err.Error()}
	}
	return r.Buf, r.EOF, nil
}
