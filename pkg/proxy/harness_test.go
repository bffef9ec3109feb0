package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/qmpsh/qmpsh/pkg/qmp"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// safety bounds a wait that should end at once, so that a bug fails the
// test instead of hanging it; no test depends on its length.
const safety = 60 * time.Second

// harness is a running proxy.
type harness struct {
	t       *testing.T
	p       *Proxy
	path    string // the listening socket
	logs    *logSink
	serving chan bool
	cancel  context.CancelFunc
	done    chan struct{}
	err     error // Run's, once done is closed
}

func shortDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "px")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// startProxy runs a proxy for upstream and waits until it serves.
func startProxy(t *testing.T, upstream string, mod func(*Config)) *harness {
	t.Helper()
	h := &harness{
		t:       t,
		path:    filepath.Join(shortDir(t), "p.sock"),
		logs:    newLogSink(),
		serving: make(chan bool, 64),
		done:    make(chan struct{}),
	}
	cfg := Config{
		Upstream: upstream,
		Listen:   []string{h.path},
		Logger:   slog.New(h.logs),
		Serving:  func(b bool) { h.serving <- b },
		MinDelay: time.Millisecond,
		MaxDelay: 50 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.p = p
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() {
		defer close(h.done)
		h.err = p.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-h.done
	})
	h.waitServing(true)
	return h
}

func (h *harness) waitServing(want bool) {
	h.t.Helper()
	for {
		select {
		case b := <-h.serving:
			if b == want {
				return
			}
		case <-h.done:
			h.t.Fatalf("proxy ended (%v) while waiting for serving=%v; log:\n%s", h.err, want, h.logs)
		case <-time.After(safety):
			h.t.Fatalf("proxy never reached serving=%v; log:\n%s", want, h.logs)
		}
	}
}

// stop ends the proxy and returns Run's error.
func (h *harness) stop() error {
	h.cancel()
	<-h.done
	return h.err
}

// wait waits for Run to return by itself.
func (h *harness) wait() error {
	h.t.Helper()
	select {
	case <-h.done:
		return h.err
	case <-time.After(safety):
		h.t.Fatalf("proxy did not end; log:\n%s", h.logs)
		return nil
	}
}

// client connects a qmp.Client through the proxy.
func (h *harness) client(opts ...qmp.Option) *qmp.Client {
	h.t.Helper()
	c := qmp.NewClient(opts...)
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	defer cancel()
	if err := c.Connect(ctx, h.path); err != nil {
		h.t.Fatalf("connecting through the proxy: %v", err)
	}
	h.t.Cleanup(func() { c.Disconnect() })
	return c
}

// logSink records log lines and lets a test wait for one.
type logSink struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{}
}

func newLogSink() *logSink { return &logSink{changed: make(chan struct{})} }

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (s *logSink) WithAttrs([]slog.Attr) slog.Handler       { return s }
func (s *logSink) WithGroup(string) slog.Handler            { return s }

func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	line := r.Message
	r.Attrs(func(a slog.Attr) bool {
		line += fmt.Sprintf(" %s=%v", a.Key, a.Value)
		return true
	})
	s.mu.Lock()
	s.lines = append(s.lines, line)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return nil
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

func (s *logSink) has(substr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lines {
		if strings.Contains(l, substr) {
			return true
		}
	}
	return false
}

func deadline() time.Time { return time.Now().Add(safety) }

// wait waits until n lines contain substr, and returns the last of them.
func (s *logSink) wait(t *testing.T, substr string, n int) string {
	t.Helper()
	deadline := time.After(safety)
	for {
		s.mu.Lock()
		count, last := 0, ""
		for _, l := range s.lines {
			if strings.Contains(l, substr) {
				count++
				last = l
			}
		}
		ch := s.changed
		s.mu.Unlock()
		if count >= n {
			return last
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no %d log lines with %q; log:\n%s", n, substr, s)
		}
	}
}

// raw is a client that speaks JSON itself, as a non-qmpsh tool would.
type raw struct {
	t    *testing.T
	conn net.Conn
	dec  *json.Decoder
}

func dialRaw(t *testing.T, path string) *raw {
	t.Helper()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &raw{t: t, conn: conn, dec: json.NewDecoder(conn)}
}

func (r *raw) send(s string) {
	r.t.Helper()
	if _, err := r.conn.Write([]byte(s)); err != nil {
		r.t.Fatalf("sending %s: %v", s, err)
	}
}

// recv returns the next message, compacted.
func (r *raw) recv() string {
	r.t.Helper()
	r.conn.SetReadDeadline(time.Now().Add(safety))
	var m json.RawMessage
	if err := r.dec.Decode(&m); err != nil {
		r.t.Fatalf("reading from the proxy: %v", err)
	}
	return string(compact(m))
}

// negotiate reads the greeting and negotiates.
func (r *raw) negotiate() {
	r.t.Helper()
	if g := r.recv(); !strings.HasPrefix(g, `{"QMP":`) {
		r.t.Fatalf("greeting = %s", g)
	}
	r.send(`{"execute":"qmp_capabilities"}`)
	if got := r.recv(); got != `{"return":{}}` {
		r.t.Fatalf("qmp_capabilities: %s", got)
	}
}

func compact(b []byte) []byte {
	var m any
	if err := json.Unmarshal(b, &m); err != nil {
		return b
	}
	out, _ := json.Marshal(m) // sorted keys: comparable
	return out
}
