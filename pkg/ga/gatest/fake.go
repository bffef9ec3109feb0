package gatest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Request is a request as a FakeAgent received it.
type Request struct {
	Execute   string          `json:"execute"`
	Arguments json.RawMessage `json:"arguments"`
	ID        json.RawMessage `json:"id"`
}

// Handler answers one request other than guest-sync-delimited: the reply
// object to send ({"return": ...} or {"error": ...}; the request's id is
// added, unless the object has "id": nil, which sends it without an id, as
// qemu-ga answers a request it could not parse), or nil to send nothing.
// An object {"raw": "..."} is sent as it is, without a newline, with
// "%ID%" replaced by the request's id: a reply laid out as qemu-ga lays
// it out, or as a broken agent might.
type Handler func(req Request) map[string]any

// FakeAgent is a scripted guest agent on a UNIX socket. It resets on a
// 0xFF byte as qemu-ga does (answering with an error without id) and
// answers guest-sync-delimited after a 0xFF sentinel, unless it is
// silent; everything else goes to its Handler.
type FakeAgent struct {
	Path string
	// Received gets every request, after it is answered (or not); it
	// holds 1024 and drops more.
	Received chan Request

	h      Handler
	silent bool
	ln     net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool // the test ended: a connection accepted now is closed at once
}

// StartFake serves h on a socket in a new temporary directory until the
// test ends. A nil h makes a silent agent: it reads everything and
// answers nothing, not even guest-sync-delimited, as a guest whose agent
// has not started yet.
func StartFake(t testing.TB, h Handler) *FakeAgent {
	t.Helper()
	dir, err := os.MkdirTemp("", "fakega")
	if err != nil {
		t.Fatal(err)
	}
	f := &FakeAgent{Path: filepath.Join(dir, "qga.sock"), Received: make(chan Request, 1024),
		h: h, silent: h == nil, conns: make(map[net.Conn]bool)}
	f.ln, err = net.Listen("unix", f.Path)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	f.wg.Add(1)
	go f.serve()
	t.Cleanup(func() {
		f.ln.Close()
		f.mu.Lock()
		f.closed = true
		for c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
		os.RemoveAll(dir)
	})
	return f
}

func (f *FakeAgent) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		if f.closed { // accepted as the test ended, after its connections were closed
			f.mu.Unlock()
			c.Close()
			return
		}
		f.conns[c] = true
		f.mu.Unlock()
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.handle(c)
			f.mu.Lock()
			delete(f.conns, c)
			f.mu.Unlock()
			c.Close()
		}()
	}
}

func (f *FakeAgent) handle(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		if i := bytes.LastIndexByte(line, 0xff); i >= 0 {
			if !f.silent {
				c.Write([]byte(`{"error": {"class": "GenericError", "desc": "JSON parse error, stray '\uFFFD'"}}` + "\n"))
			}
			line = line[i+1:]
		}
		var req Request
		if json.Unmarshal(line, &req) != nil {
			continue
		}
		var reply map[string]any
		var prefix []byte
		switch {
		case f.silent:
		case req.Execute == "guest-sync-delimited":
			var a struct{ ID json.RawMessage }
			json.Unmarshal(req.Arguments, &a)
			reply, prefix = map[string]any{"return": a.ID}, []byte{0xff}
		default:
			reply = f.h(req)
		}
		if raw, ok := reply["raw"].(string); ok {
			c.Write([]byte(strings.ReplaceAll(raw, "%ID%", string(req.ID))))
		} else if reply != nil {
			if id, set := reply["id"]; set && id == nil {
				delete(reply, "id")
			} else if req.ID != nil {
				reply["id"] = req.ID
			}
			b, _ := json.Marshal(reply)
			c.Write(append(append(prefix, b...), '\n'))
		}
		select {
		case f.Received <- req:
		default:
		}
	}
}
