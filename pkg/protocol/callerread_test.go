package protocol

// Caller reads (Read, Config.Yield): a caller reading the connection
// itself must keep every guarantee of the reader goroutine.

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// yielding is a Protocol whose reader goroutine yields whenever it has
// nothing buffered, over a net.Pipe. Messages handled go to got (except
// "bad", which Handle rejects), and parked receives a value each time the
// reader goroutine has let go of the connection. What the peer writes
// goes through one goroutine, in order: net.Pipe has no buffer.
type yielding struct {
	p       *Protocol
	peer    net.Conn
	out     chan string
	got     chan string
	parked  chan struct{}
	untimed chan struct{}
	ended   chan error
	yield   atomic.Bool // what Config.Yield says; true at first
	// While hold is set, the reader goroutine waits in park, before it
	// checks the time, until release is closed.
	hold    atomic.Bool
	release chan struct{}
	handled atomic.Int64 // messages handled (got may have been read since)
}

// newYielding starts a yielding protocol whose reader goroutine takes the
// connection back after idle without a Read; conn, if not nil, wraps the
// protocol's end of the pipe.
func newYielding(t *testing.T, idle time.Duration, conn func(net.Conn) net.Conn) *yielding {
	t.Helper()
	y := &yielding{
		out:     make(chan string, 100),
		got:     make(chan string, 100),
		parked:  make(chan struct{}, 100),
		untimed: make(chan struct{}, 100),
		ended:   make(chan error, 1),
		release: make(chan struct{}),
	}
	y.yield.Store(true)
	idleRead = idle
	testHookParked = func(untimed bool) {
		c := y.parked
		if untimed {
			c = y.untimed
		}
		select {
		case c <- struct{}{}:
		default:
		}
		if y.hold.Load() {
			<-y.release
		}
	}
	y.p = New(Config{
		Handle: func(m []byte) error {
			if string(m) == "bad" {
				return errors.New("bad message")
			}
			y.handled.Add(1)
			y.got <- string(m)
			return nil
		},
		Yield: y.yield.Load,
		Ended: func(err error) { y.ended <- err },
	})
	ours, theirs := net.Pipe()
	if conn != nil {
		ours = conn(ours)
	}
	if err := y.p.ConnectConn(context.Background(), ours); err != nil {
		t.Fatal(err)
	}
	y.peer = theirs
	written := make(chan struct{})
	go func() {
		defer close(written)
		for s := range y.out {
			if _, err := io.WriteString(theirs, s); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		theirs.Close()
		close(y.out)
		<-written
		y.p.Disconnect()
		testHookParked = nil // the reader goroutine is gone
		idleRead = time.Millisecond
	})
	return y
}

// write has the peer write s, in the background.
func (y *yielding) write(s string) { y.out <- s }

// next returns the next message handled.
func (y *yielding) next(t *testing.T) string {
	t.Helper()
	select {
	case m := <-y.got:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10s")
		return ""
	}
}

// waitParked waits for the reader goroutine to yield, after it handled a
// first message.
func (y *yielding) waitParked(t *testing.T) {
	t.Helper()
	y.write("first\n")
	y.want(t, "first")
	select {
	case <-y.parked:
	case <-time.After(10 * time.Second):
		t.Fatal("reader goroutine did not yield within 10s")
	}
}

// gotOne is a Read's done: true once a message has been handled.
func (y *yielding) gotOne() func() bool {
	return func() bool { return len(y.got) > 0 }
}

// read reads as a caller, which the reader goroutine must have let do.
func (y *yielding) read(t *testing.T, ctx context.Context, done func() bool) {
	t.Helper()
	if !y.p.Read(ctx, done) {
		t.Fatal("Read() = false with the reader goroutine yielded")
	}
}

// hangUp closes the peer's end and checks that the session ends for it.
func (y *yielding) hangUp(t *testing.T) {
	t.Helper()
	y.peer.Close()
	if err := waitEnded(t, y.ended); !errors.Is(err, ErrClosedByPeer) {
		t.Fatalf("session ended with %v, want %v", err, ErrClosedByPeer)
	}
}

// want checks the next message handled.
func (y *yielding) want(t *testing.T, want string) {
	t.Helper()
	if m := y.next(t); m != want {
		t.Fatalf("got %q, want %q", m, want)
	}
}

func TestReadHandlesMessages(t *testing.T) {
	y := newYielding(t, time.Hour, nil)
	y.waitParked(t)
	y.write("second\n")
	y.read(t, context.Background(), y.gotOne())
	y.want(t, "second")
}

// A caller reading garbage ends the session before anything after the
// garbage is handled, by it or by the reader goroutine, which may take
// the connection back at any time here (its idle check is short).
func TestReadGarbageEndsFirst(t *testing.T) {
	for range 100 {
		y := newYielding(t, time.Millisecond, nil)
		y.waitParked(t)
		y.write("bad\nafter1\nafter2\n")
		y.p.Read(context.Background(), func() bool { return false })
		if err := waitEnded(t, y.ended); err == nil || err.Error() != "bad message" {
			t.Fatalf("session ended with %v, want bad message", err)
		}
		y.p.Disconnect()
		select {
		case m := <-y.got:
			t.Fatalf("%q handled after the garbage", m)
		default:
		}
	}
}

// uncomparableCtx is a context that == would panic on.
type uncomparableCtx struct {
	context.Context
	_ []int
}

// A context ending interrupts a Read blocked on the connection, and the
// part of a message read before is kept: the message arrives whole later.
func TestReadInterruptedKeepsStream(t *testing.T) {
	for _, name := range []string{"cancel", "deadline", "uncomparable"} {
		t.Run(name, func(t *testing.T) {
			y := newYielding(t, time.Hour, nil)
			y.waitParked(t)
			var ctx context.Context
			var cancel context.CancelFunc
			switch name {
			case "deadline":
				ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
			default:
				ctx, cancel = context.WithCancel(context.Background())
				time.AfterFunc(20*time.Millisecond, cancel)
			}
			defer cancel()
			if name == "uncomparable" {
				ctx = uncomparableCtx{Context: ctx}
			}
			y.write("hal")
			y.read(t, ctx, y.gotOne())
			if ctx.Err() == nil {
				t.Fatal("Read returned before its context ended")
			}
			y.write("f\n")
			y.read(t, context.Background(), y.gotOne())
			y.want(t, "half")
			// The same context again, already ended: Read does nothing.
			y.write("third\n")
			y.p.Read(ctx, y.gotOne())
			select {
			case m := <-y.got:
				t.Fatalf("Read with an ended context handled %q", m)
			default:
			}
			y.read(t, context.Background(), y.gotOne())
			y.want(t, "third")
		})
	}
}

// noDeadlines is a net.Conn that cannot take read deadlines, as a
// caller's own net.Conn may be.
type noDeadlines struct{ net.Conn }

func (noDeadlines) SetReadDeadline(time.Time) error { return errors.New("not supported") }

// Without read deadlines a Read could not be interrupted: the reader
// goroutine reads everything, and Read declines.
func TestReadNeedsDeadlines(t *testing.T) {
	y := newYielding(t, time.Hour, func(c net.Conn) net.Conn { return noDeadlines{c} })
	y.write("first\n")
	y.want(t, "first")
	if y.p.Read(context.Background(), y.gotOne()) {
		t.Fatal("Read() = true on a connection without read deadlines")
	}
	y.write("second\n")
	y.want(t, "second")
	select {
	case <-y.parked:
		t.Fatal("reader goroutine yielded on a connection without read deadlines")
	default:
	}
}

// With nobody reading, the yielded reader goroutine takes the connection
// back, so that the peer hanging up ends the session.
func TestYieldedReaderNoticesHangUp(t *testing.T) {
	y := newYielding(t, time.Millisecond, nil)
	y.waitParked(t)
	y.hangUp(t)
}

// Read after Disconnect, and Read racing Disconnect, do nothing harmful.
func TestReadAndDisconnect(t *testing.T) {
	y := newYielding(t, time.Hour, nil)
	y.waitParked(t)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		y.p.Read(context.Background(), func() bool { return false })
	}()
	if err := y.p.Disconnect(); err != nil && !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Disconnect() = %v", err)
	}
	wg.Wait()
	if y.p.Read(context.Background(), y.gotOne()) {
		t.Fatal("Read() = true after Disconnect")
	}
}

// Blank lines after a message are no message: a Read that has its
// message does not wait for more because of them.
func TestReadBlankLines(t *testing.T) {
	y := newYielding(t, time.Hour, nil)
	y.waitParked(t)
	y.write("second\r\n\r\n\n")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	y.p.Read(ctx, y.gotOne())
	if ctx.Err() != nil {
		t.Fatal("Read waited for more after blank lines")
	}
	y.want(t, "second")
}

// Wake makes a yielded reader goroutine read for whoever now waits.
func TestWake(t *testing.T) {
	y := newYielding(t, time.Hour, nil)
	y.waitParked(t)
	y.yield.Store(false) // someone waits, and reads nothing itself
	y.p.Wake()
	y.write("second\n")
	y.want(t, "second")
}

// While a Read is under way, the yielded reader goroutine stops checking
// every idleRead and waits for the Read to wake it; then it checks again,
// and notices the peer hanging up.
func TestParkedReaderWaitsForRead(t *testing.T) {
	y := newYielding(t, time.Millisecond, nil)
	y.hold.Store(true) // so that only the Read below can read "second"
	y.waitParked(t)
	y.write("second\n")
	read := make(chan bool, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() { read <- y.p.Read(ctx, func() bool { return y.handled.Load() == 3 }) }()
	y.want(t, "second")
	close(y.release) // the Read is under way, blocked for a third message
	select {
	case <-y.untimed:
	case <-time.After(10 * time.Second):
		t.Fatal("the reader goroutine kept checking while a Read was under way")
	}
	y.write("third\n")
	if !<-read {
		t.Fatal("Read() = false with the reader goroutine yielded")
	}
	y.want(t, "third")
	y.hangUp(t)
}

// Reads in a row with one context share its interruption, which still
// interrupts the Read under way when the context ends.
func TestReadSameContextInterrupted(t *testing.T) {
	y := newYielding(t, time.Hour, nil)
	y.waitParked(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, m := range []string{"second", "third"} {
		y.write(m + "\n")
		y.read(t, ctx, y.gotOne())
		y.want(t, m)
	}
	time.AfterFunc(20*time.Millisecond, cancel)
	y.read(t, ctx, func() bool { return false })
	if ctx.Err() == nil {
		t.Fatal("Read returned before its context ended")
	}
	// A Read with another context is not interrupted by the first one's.
	y.write("fourth\n")
	y.read(t, context.Background(), y.gotOne())
	y.want(t, "fourth")
}

// A message longer than the input buffer, interrupted in the middle,
// still arrives whole.
func TestReadInterruptedLongMessage(t *testing.T) {
	y := newYielding(t, time.Hour, nil)
	y.waitParked(t)
	long := strings.Repeat("x", 300<<10)
	y.write(long[:200<<10])
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	y.read(t, ctx, y.gotOne())
	y.write(long[200<<10:] + "\n")
	y.read(t, context.Background(), y.gotOne())
	if m := y.next(t); m != long {
		t.Fatalf("got %d bytes, want %d", len(m), len(long))
	}
}
