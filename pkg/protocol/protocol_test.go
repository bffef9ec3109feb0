package protocol

// The seed's python/tests/protocol.py, case by case. Go names keep the
// seed's: TestSmoke/Repr is test__repr__, TestConnect/BadINET is
// Connect.testBadINET, and so on.

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The states a failed or cancelled connect/accept goes through.
var badConnectionStates = []Runstate{Connecting, Disconnecting, Idle}

// The states a good session goes through.
var goodConnectionStates = []Runstate{Connecting, Running, Disconnecting, Idle}

// setUp is the seed's TestBase: a fresh NullProtocol named after the test,
// IDLE at start and at the end.
func setUp(t *testing.T) *nullProtocol {
	t.Helper()
	p := newNull(t.Name())
	if got := p.Runstate(); got != Idle {
		t.Fatalf("runstate at setUp = %v, want IDLE", got)
	}
	t.Cleanup(func() {
		p.closePeer()
		if got := p.Runstate(); got != Idle {
			t.Errorf("runstate at tearDown = %v, want IDLE", got)
		}
	})
	return p
}

// watchRunstates is the seed's _watch_runstates: it starts watching now
// and, at the end of the test, checks that exactly these transitions
// happened, in this order.
func watchRunstates(t *testing.T, p *nullProtocol, states ...Runstate) {
	t.Helper()
	w := p.Watch()
	t.Cleanup(func() {
		defer w.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for i, want := range states {
			got, err := w.Next(ctx)
			if err != nil {
				t.Errorf("transition %d: expected state '%v', got %v", i, want, err)
				return
			}
			if got != want {
				t.Errorf("transition %d: expected state '%v', got '%v'", i, want, got)
			}
		}
		done, cancel := context.WithCancel(context.Background())
		cancel()
		if extra, err := w.Next(done); err == nil {
			t.Errorf("unexpected further transition to '%v'", extra)
		}
	})
}

// nextState waits for w's next transition.
func nextState(t *testing.T, w *Watcher) Runstate {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := w.Next(ctx)
	if err != nil {
		t.Fatalf("waiting for a runstate change: %v", err)
	}
	return s
}

func TestSmoke(t *testing.T) {
	t.Run("Repr", func(t *testing.T) {
		p := newNull("")
		if got, want := p.String(), "<NullProtocol runstate=IDLE>"; got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	})
	t.Run("Runstate", func(t *testing.T) {
		if got := newNull("").Runstate(); got != Idle {
			t.Errorf("Runstate() = %v, want IDLE", got)
		}
	})
	t.Run("DefaultName", func(t *testing.T) {
		if got := newNull("").Name(); got != "" {
			t.Errorf("Name() = %q, want empty", got)
		}
	})
	t.Run("Logger", func(t *testing.T) {
		p := newNull("")
		p.Logger().Info("hello")
		r := p.logs.waitFor(t, "hello")
		if got, want := r.Attrs["logger"], "qmpsh.protocol"; got != want {
			t.Errorf("logger = %q, want %q", got, want)
		}
	})
	t.Run("Name", func(t *testing.T) {
		p := newNull("Steve")
		if got := p.Name(); got != "Steve" {
			t.Errorf("Name() = %q, want Steve", got)
		}
		p.Logger().Info("hello")
		r := p.logs.waitFor(t, "hello")
		if got, want := r.Attrs["logger"], "qmpsh.protocol.Steve"; got != want {
			t.Errorf("logger = %q, want %q", got, want)
		}
		if got, want := p.String(), "<NullProtocol name='Steve' runstate=IDLE>"; got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	})
}

func TestState(t *testing.T) {
	t.Run("SuperfluousDisconnect", func(t *testing.T) {
		p := setUp(t)
		watchRunstates(t, p, Disconnecting, Idle)
		if err := p.Disconnect(); err != nil {
			t.Fatalf("Disconnect() = %v", err)
		}
	})
}

// connectFamily is what differs between the seed's Connect and Accept
// classes: how a bad and a hanging connection are made.
type connectFamily struct {
	bad     func(t *testing.T, p *nullProtocol, family string) error
	hanging func(t *testing.T, p *nullProtocol, ctx context.Context) error
}

var connectCases = connectFamily{
	bad: func(t *testing.T, p *nullProtocol, family string) error {
		if family == "INET" {
			return p.Connect(context.Background(), "127.0.0.1:0")
		}
		return p.Connect(context.Background(), "/dev/null")
	},
	hanging: func(t *testing.T, p *nullProtocol, ctx context.Context) error {
		return p.Connect(ctx, jammedSocket(t))
	},
}

var acceptCases = connectFamily{
	bad: func(t *testing.T, p *nullProtocol, family string) error {
		if family == "INET" {
			// Not an address of this host (TEST-NET-1): bind fails at once.
			return p.Accept(context.Background(), "192.0.2.1:1")
		}
		return p.Accept(context.Background(), "/dev/null")
	},
	hanging: func(t *testing.T, p *nullProtocol, ctx context.Context) error {
		return p.Accept(ctx, filepath.Join(t.TempDir(), "NullProtocol.sock"))
	},
}

func TestConnect(t *testing.T) { runConnectCases(t, connectCases) }

func TestAccept(t *testing.T) { runConnectCases(t, acceptCases) }

func runConnectCases(t *testing.T, fam connectFamily) {
	badConnection := func(t *testing.T, family string) {
		p := setUp(t)
		watchRunstates(t, p, badConnectionStates...)
		err := fam.bad(t, p, family)
		var ce *ConnectError
		if !errors.As(err, &ce) {
			t.Fatalf("error = %v (%T), want *ConnectError", err, err)
		}
		if ce.Message != "failed to establish connection" {
			t.Errorf("Message = %q", ce.Message)
		}
		var oe *net.OpError
		if !errors.As(err, &oe) {
			t.Errorf("errors.As(err, *net.OpError) failed for %#v", ce.Err)
		}
	}
	t.Run("BadINET", func(t *testing.T) { badConnection(t, "INET") })
	t.Run("BadUNIX", func(t *testing.T) { badConnection(t, "UNIX") })

	// startHanging begins a hanging connection in a goroutine and returns
	// once the protocol is CONNECTING, with a way to collect its result.
	startHanging := func(t *testing.T, p *nullProtocol, ctx context.Context) func() error {
		w := p.Watch()
		defer w.Close()
		result := make(chan error, 1)
		go func() { result <- fam.hanging(t, p, ctx) }()
		if s := nextState(t, w); s != Connecting {
			t.Fatalf("first transition = %v, want CONNECTING", s)
		}
		return func() error {
			select {
			case err := <-result:
				return err
			case <-time.After(10 * time.Second):
				t.Fatal("connection attempt did not return within 10s of cancellation")
				return nil
			}
		}
	}

	t.Run("Cancellation", func(t *testing.T) {
		p := setUp(t)
		watchRunstates(t, p, badConnectionStates...)
		ctx, cancel := context.WithCancel(context.Background())
		wait := startHanging(t, p, ctx)
		cancel()
		if err := wait(); !errors.Is(err, context.Canceled) {
			t.Fatalf("error = %v, want context.Canceled", err)
		}
	})

	t.Run("Timeout", func(t *testing.T) {
		p := setUp(t)
		watchRunstates(t, p, badConnectionStates...)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		wait := startHanging(t, p, ctx)
		if err := wait(); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error = %v, want context.DeadlineExceeded", err)
		}
	})

	t.Run("Require", func(t *testing.T) {
		p := setUp(t)
		watchRunstates(t, p, badConnectionStates...)
		ctx, cancel := context.WithCancel(context.Background())
		wait := startHanging(t, p, ctx)

		err := fam.bad(t, p, "UNIX")
		var se *StateError
		if !errors.As(err, &se) {
			t.Fatalf("error = %v (%T), want *StateError", err, err)
		}
		if want := "NullProtocol is currently connecting."; se.Error() != want {
			t.Errorf("message = %q, want %q", se.Error(), want)
		}
		if se.State != Connecting || se.Required != Idle {
			t.Errorf("state = %v, required = %v; want CONNECTING, IDLE", se.State, se.Required)
		}
		cancel()
		wait()
	})

	t.Run("ImplicitRunstateInit", func(t *testing.T) {
		p := setUp(t)
		ctx, cancel := context.WithCancel(context.Background())
		wait := startHanging(t, p, ctx)
		if s := p.Runstate(); s != Connecting {
			t.Fatalf("runstate = %v, want CONNECTING", s)
		}
		// This watcher starts after the transition to CONNECTING and must
		// see only what follows it.
		watchRunstates(t, p, Disconnecting, Idle)
		cancel()
		wait()
	})
}

func TestFakeSession(t *testing.T) {
	// setUpFake is the seed's FakeSession.setUp/_asyncSetUp/_asyncTearDown:
	// fake sessions, a watcher for a good session's states, and a
	// Disconnect at the end.
	setUpFake := func(t *testing.T) *nullProtocol {
		p := setUp(t)
		p.fakeSession = true
		watchRunstates(t, p, goodConnectionStates...)
		t.Cleanup(func() {
			if err := p.Disconnect(); err != nil {
				t.Errorf("Disconnect() = %v", err)
			}
		})
		return p
	}
	ctx := context.Background()

	t.Run("FakeConnect", func(t *testing.T) {
		p := setUpFake(t)
		if err := p.Connect(ctx, "/not/a/real/path"); err != nil {
			t.Fatal(err)
		}
		if s := p.Runstate(); s != Running {
			t.Errorf("runstate = %v, want RUNNING", s)
		}
	})

	t.Run("FakeAccept", func(t *testing.T) {
		p := setUpFake(t)
		if err := p.Accept(ctx, "/not/a/real/path"); err != nil {
			t.Fatal(err)
		}
		if s := p.Runstate(); s != Running {
			t.Errorf("runstate = %v, want RUNNING", s)
		}
	})

	t.Run("FakeRecv", func(t *testing.T) {
		p := setUpFake(t)
		if err := p.Accept(ctx, "/not/a/real/path"); err != nil {
			t.Fatal(err)
		}
		p.logs.drain()
		p.triggerInput(t)
		r := p.logs.waitFor(t, "<-- null")
		if r.Level != slog.LevelDebug || r.Attrs["logger"] != "qmpsh.protocol."+t.Name() {
			t.Errorf("record = %+v, want DEBUG from qmpsh.protocol.%s", r, t.Name())
		}
	})

	t.Run("FakeSend", func(t *testing.T) {
		p := setUpFake(t)
		if err := p.Accept(ctx, "/not/a/real/path"); err != nil {
			t.Fatal(err)
		}
		p.logs.drain()
		if err := p.Send(ctx, []byte("null")); err != nil {
			t.Fatal(err)
		}
		// The message reaches nobody but the pipe's other end.
		buf := make([]byte, 5)
		p.mu.Lock()
		peer := p.peer
		p.mu.Unlock()
		if _, err := io.ReadFull(peer, buf); err != nil || string(buf) != "null\n" {
			t.Fatalf("peer read %q, %v; want \"null\\n\"", buf, err)
		}
		r := p.logs.waitFor(t, "--> null")
		if r.Level != slog.LevelDebug {
			t.Errorf("level = %v, want DEBUG", r.Level)
		}
	})

	prodSessionAPI := func(t *testing.T, p *nullProtocol, current Runstate, message string, accept bool) {
		t.Helper()
		var err error
		if accept {
			err = p.Accept(ctx, "/not/a/real/path")
		} else {
			err = p.Connect(ctx, "/not/a/real/path")
		}
		var se *StateError
		if !errors.As(err, &se) {
			t.Fatalf("error = %v (%T), want *StateError", err, err)
		}
		if se.Error() != message {
			t.Errorf("message = %q, want %q", se.Error(), message)
		}
		if se.State != current || se.Required != Idle {
			t.Errorf("state = %v, required = %v; want %v, IDLE", se.State, se.Required, current)
		}
	}

	t.Run("AcceptRequireRunning", func(t *testing.T) {
		p := setUpFake(t)
		if err := p.Accept(ctx, "/not/a/real/path"); err != nil {
			t.Fatal(err)
		}
		prodSessionAPI(t, p, Running, "NullProtocol is already connected and running.", true)
	})

	t.Run("ConnectRequireRunning", func(t *testing.T) {
		p := setUpFake(t)
		if err := p.Accept(ctx, "/not/a/real/path"); err != nil {
			t.Fatal(err)
		}
		prodSessionAPI(t, p, Running, "NullProtocol is already connected and running.", false)
	})

	t.Run("AcceptRequireDisconnecting", func(t *testing.T) {
		p := setUpFake(t)
		if err := p.Accept(ctx, "/not/a/real/path"); err != nil {
			t.Fatal(err)
		}
		p.simulateDisconnect()
		prodSessionAPI(t, p, Disconnecting,
			"NullProtocol is disconnecting. Call Disconnect() to return to IDLE state.", true)
	})

	t.Run("ConnectRequireDisconnecting", func(t *testing.T) {
		p := setUpFake(t)
		if err := p.Accept(ctx, "/not/a/real/path"); err != nil {
			t.Fatal(err)
		}
		p.simulateDisconnect()
		prodSessionAPI(t, p, Disconnecting,
			"NullProtocol is disconnecting. Call Disconnect() to return to IDLE state.", false)
	})
}
