package ga

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// DefaultChunkSize is how much ReadFile and WriteFile move per request:
// large enough that the round trips cost little beside the base64, small
// enough to stay far below the agent's and the client's message limits.
const DefaultChunkSize = 2 << 20

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
func (c *Client) OpenFile(ctx context.Context, path, mode string) (*File, error) {
	ret, err := c.Exec(ctx, "guest-file-open", map[string]string{"path": path, "mode": mode})
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
// so that the agent is not left holding the handle.
func (f *File) closeAnyway(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	return f.Close(cctx)
}

// ReadFile copies the guest file path to w, a chunk at a time, and
// returns how many bytes it copied. progress, if set, is called with the
// running total after each chunk. The guest file is closed whatever
// happens.
func (c *Client) ReadFile(ctx context.Context, path string, w io.Writer, progress func(int64)) (n int64, err error) {
	f, err := c.OpenFile(ctx, path, "r")
	if err != nil {
		return 0, err
	}
	defer func() {
		if cerr := f.closeAnyway(ctx); err == nil && cerr != nil {
			err = cerr
		}
	}()
	for {
		b, eof, err := f.Read(ctx, c.chunk)
		if err != nil {
			return n, err
		}
		if len(b) > 0 {
			if _, err := w.Write(b); err != nil {
				return n, err
			}
			n += int64(len(b))
			if progress != nil {
				progress(n)
			}
		}
		if eof || len(b) == 0 {
			return n, nil
		}
	}
}

// WriteFile copies r into the guest file path, created or truncated, a
// chunk at a time, and returns how many bytes it copied. progress is as
// for ReadFile. The guest file is closed whatever happens.
func (c *Client) WriteFile(ctx context.Context, path string, r io.Reader, progress func(int64)) (n int64, err error) {
	f, err := c.OpenFile(ctx, path, "w")
	if err != nil {
		return 0, err
	}
	defer func() {
		if cerr := f.closeAnyway(ctx); err == nil && cerr != nil {
			err = cerr
		}
	}()
	buf := make([]byte, c.chunk)
	for {
		m, rerr := io.ReadFull(r, buf)
		if m > 0 {
			if err := f.Write(ctx, buf[:m]); err != nil {
				return n, err
			}
			n += int64(m)
			if progress != nil {
				progress(n)
			}
		}
		switch {
		case errors.Is(rerr, io.EOF), errors.Is(rerr, io.ErrUnexpectedEOF):
			return n, nil
		case rerr != nil:
			return n, rerr
		}
	}
}
