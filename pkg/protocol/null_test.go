package protocol

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// nullProtocol is the Go counterpart of the seed's NullProtocol: a
// Protocol whose fake session bypasses the real connect and accept (it
// runs over one end of a net.Pipe) while the reader and writer run for
// real. The test plays the peer on the pipe's other end: writing a line
// to it is the seed's trigger_input.
type nullProtocol struct {
	*Protocol
	fakeSession bool
	logs        *logRecorder

	mu   sync.Mutex
	peer net.Conn // the test's end of the fake session
}

func newNull(name string) *nullProtocol {
	logs := newLogRecorder()
	return &nullProtocol{
		Protocol: New(Config{Name: name, Kind: "NullProtocol", Logger: slog.New(logs)}),
		logs:     logs,
	}
}

func (n *nullProtocol) Connect(ctx context.Context, addr string) error {
	if n.fakeSession {
		return n.fake(ctx)
	}
	return n.Protocol.Connect(ctx, addr)
}

func (n *nullProtocol) Accept(ctx context.Context, addr string) error {
	if n.fakeSession {
		return n.fake(ctx)
	}
	return n.Protocol.Accept(ctx, addr)
}

func (n *nullProtocol) fake(ctx context.Context) error {
	ours, theirs := net.Pipe()
	if err := n.ConnectConn(ctx, ours); err != nil {
		ours.Close()
		theirs.Close()
		return err
	}
	n.mu.Lock()
	n.peer = theirs
	n.mu.Unlock()
	return nil
}

// triggerInput delivers one null message to the reader.
func (n *nullProtocol) triggerInput(t *testing.T) {
	t.Helper()
	n.mu.Lock()
	peer := n.peer
	n.mu.Unlock()
	if _, err := peer.Write([]byte("null\n")); err != nil {
		t.Fatalf("peer write: %v", err)
	}
}

// simulateDisconnect ends the session the way a reader or writer failure
// would, without waiting: the protocol is left Disconnecting.
func (n *nullProtocol) simulateDisconnect() { n.scheduleDisconnect(nil) }

func (n *nullProtocol) closePeer() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.peer != nil {
		n.peer.Close()
	}
}

// logRecorder is a slog.Handler that keeps every record and announces
// each one on a channel, so a test can wait for a log line instead of
// sleeping.
type logRecorder struct {
	attrs []slog.Attr
	*logStore
}

type logStore struct {
	mu      sync.Mutex
	records []loggedRecord
	ch      chan loggedRecord
}

type loggedRecord struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

func newLogRecorder() *logRecorder {
	return &logRecorder{logStore: &logStore{ch: make(chan loggedRecord, 1024)}}
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	rec := loggedRecord{Level: r.Level, Msg: r.Message, Attrs: map[string]string{}}
	for _, a := range h.attrs {
		rec.Attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.Attrs[a.Key] = a.Value.String()
		return true
	})
	h.mu.Lock()
	h.records = append(h.records, rec)
	h.mu.Unlock()
	select {
	case h.ch <- rec:
	default:
	}
	return nil
}

func (h *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &logRecorder{attrs: append(append([]slog.Attr(nil), h.attrs...), as...), logStore: h.logStore}
}

func (h *logRecorder) WithGroup(string) slog.Handler { return h }

// waitFor returns the first record, from now on, whose message is msg.
func (h *logRecorder) waitFor(t *testing.T, msg string) loggedRecord {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case r := <-h.ch:
			if r.Msg == msg {
				return r
			}
		case <-timeout:
			t.Fatalf("no log record %q within 10s", msg)
		}
	}
}

// drain forgets records announced so far.
func (h *logRecorder) drain() {
	for {
		select {
		case <-h.ch:
		default:
			return
		}
	}
}

// jammedSocket returns the address of a TCP listener on 127.0.0.1 that
// never accepts and whose accept queue is full, so a connect to it hangs
// in SYN retransmission until cancelled. Like the seed's jammed_socket it
// needs a backlog of 1 and two unaccepted connections; net.Listen cannot
// set the backlog, hence the raw socket.
func jammedSocket(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 1); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	for range 2 {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("filling the accept queue: %v", err)
		}
		t.Cleanup(func() { c.Close() })
	}
	return addr
}
