package proxy

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qmpsh/qmpsh/pkg/protocol"
	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// A draining client's writer has ended (the end of its queue written,
// c.written closed) and serve has not yet closed the connection: an event
// pushed then is not written at all, not written directly in part, its
// rest left to a writer that is gone (the client would read a cut line).
func TestNothingWrittenAfterEndOfQueue(t *testing.T) {
	p, err := New(Config{Upstream: "/nonexistent"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(shortDir(t), "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cli, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(p, srv, "client X")
	go c.writer()
	p.mu.Lock()
	c.push([]byte(`{"return": {}, "id": 1}`)) // the last reply (handle)
	c.push(nil)                               // answered(): draining, inflight 0
	p.mu.Unlock()
	<-c.written // serve: the drain is over
	// handle() pushes an event before serve gets to c.kill(""):
	big := `{"event": "BIG", "data": {"x": "` + strings.Repeat("x", 4<<20) + `"}}`
	p.mu.Lock()
	c.push([]byte(big))
	p.mu.Unlock()
	c.kill("")
	all, _ := io.ReadAll(cli)
	if want := `{"return": {}, "id": 1}` + "\n"; string(all) != want {
		t.Errorf("the client read %d bytes (%.60q...), want only the last reply", len(all), all)
	}
}

// A reply the proxy writes itself is traced before it is written: a
// client quick to send its next request must not have it traced before
// the reply it answers. The tracer takes a little while, as one writing
// to a terminal does.
func TestTraceKeepsReplyBeforeNextRequest(t *testing.T) {
	srv := qmptest.NewServer(qmptest.Standard)
	defer srv.Close()
	var mu sync.Mutex
	type ev struct {
		who string
		dir protocol.Direction
		id  int
	}
	var log []ev
	h := startProxy(t, srv.Addr, func(c *Config) {
		c.Trace = func(who string, dir protocol.Direction, msg []byte) {
			var m struct{ ID *int }
			json.Unmarshal(msg, &m)
			mu.Lock()
			// a tracer writing to a terminal takes a little while
			for t0 := time.Now(); time.Since(t0) < 20*time.Microsecond; {
			}
			if m.ID != nil && who != "qemu" {
				log = append(log, ev{who, dir, *m.ID})
			}
			mu.Unlock()
		}
	})
	const clients, calls = 4, 300
	var wg sync.WaitGroup
	for k := 0; k < clients; k++ {
		r := dialRaw(t, h.path)
		r.negotiate()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= calls; i++ {
				r.conn.Write([]byte(fmt.Sprintf(`{"execute":"query-status","id":%d}`, i)))
				var m json.RawMessage
				if err := r.dec.Decode(&m); err != nil {
					return
				}
			}
		}()
	}
	wg.Wait() // every reply read: traced before it was written
	mu.Lock()
	defer mu.Unlock()
	sent := map[string]int{}
	bad := 0
	for _, e := range log {
		if e.dir == protocol.Sent {
			sent[e.who] = e.id
			continue
		}
		if e.id > 1 && sent[e.who] != e.id-1 {
			if bad < 3 {
				t.Errorf("%s: request %d traced before the reply to %d", e.who, e.id, e.id-1)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%d requests traced before the previous reply", bad)
	}
}
