package protocol

// What the seed does not test: the message-size limit, errors from the
// reader and writer surfacing from Disconnect, concurrent senders, the
// session hook, file-descriptor passing, and the UNIX listener's rules.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pipeSession runs p over one end of a net.Pipe and returns the other end.
func pipeSession(t *testing.T, p *Protocol) net.Conn {
	t.Helper()
	ours, theirs := net.Pipe()
	if err := p.ConnectConn(context.Background(), ours); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { theirs.Close(); p.Disconnect() })
	return theirs
}

// waitEnded returns the cause Config.Ended reported.
func waitEnded(t *testing.T, ended <-chan error) error {
	t.Helper()
	select {
	case err := <-ended:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("session did not end within 10s")
		return nil
	}
}

func TestMessageLimit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		line    string
		wantErr bool
	}{
		{"AtLimit", strings.Repeat("x", 64) + "\r\n", false},
		{"OverLimit", strings.Repeat("x", 65) + "\n", true},
		// Far longer than the limit and the read buffer: it must fail
		// without reading it all.
		{"HugeNoNewline", strings.Repeat("y", 1<<20), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan []byte, 1)
			ended := make(chan error, 1)
			p := New(Config{
				MaxMessageSize: 64,
				Handle:         func(m []byte) error { got <- bytes.Clone(m); return nil },
				Ended:          func(err error) { ended <- err },
			})
			peer := pipeSession(t, p)
			go io.Copy(peer, strings.NewReader(tc.line)) // ends when the pipe closes
			if !tc.wantErr {
				if m := <-got; len(m) != 64 {
					t.Fatalf("got %d-byte message, want 64", len(m))
				}
				return
			}
			waitEnded(t, ended)
			err := p.Disconnect()
			var tl *MessageTooLongError
			if !errors.As(err, &tl) || tl.Limit != 64 {
				t.Fatalf("Disconnect() = %v, want *MessageTooLongError{64}", err)
			}
			if want := "message from peer exceeds the 64-byte limit"; err.Error() != want {
				t.Errorf("message = %q, want %q", err, want)
			}
		})
	}
}

func TestReaderErrors(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name   string
		peer   func(c net.Conn)
		handle func([]byte) error
		check  func(error) bool
		want   string
	}{
		{"PeerClosed", func(c net.Conn) { c.Close() }, nil,
			func(err error) bool { return errors.Is(err, ErrClosedByPeer) }, "connection closed by peer"},
		{"HalfLine", func(c net.Conn) { c.Write([]byte(`{"ret`)); c.Close() }, nil,
			func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) },
			"connection closed in the middle of a message (5 bytes of it read): unexpected EOF"},
		{"HandlerError", func(c net.Conn) { c.Write([]byte("bad\n")) },
			func(m []byte) error { return fmt.Errorf("handling %q: %w", m, boom) },
			func(err error) bool { return errors.Is(err, boom) }, `handling "bad": boom`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ended := make(chan error, 1)
			p := New(Config{Kind: "NullProtocol", Handle: tc.handle, Ended: func(err error) { ended <- err }})
			w := p.Watch()
			defer w.Close()
			peer := pipeSession(t, p)
			go tc.peer(peer)
			cause := waitEnded(t, ended)
			if !tc.check(cause) {
				t.Errorf("Ended cause = %v", cause)
			}
			if err := p.Err(); err != cause {
				t.Errorf("Err() = %v, want the cause %v", err, cause)
			}
			// The bottom half leaves the protocol DISCONNECTING until
			// Disconnect collects the error.
			for _, want := range []Runstate{Connecting, Running, Disconnecting} {
				if s := nextState(t, w); s != want {
					t.Fatalf("transition = %v, want %v", s, want)
				}
			}
			if err := p.Send(context.Background(), []byte("x")); err == nil {
				t.Error("Send after the session ended succeeded")
			}
			err := p.Disconnect()
			if !tc.check(err) || err.Error() != tc.want {
				t.Errorf("Disconnect() = %q, want %q", err, tc.want)
			}
			if s := p.Runstate(); s != Idle {
				t.Errorf("runstate after Disconnect = %v", s)
			}
			// The cause stays recorded: every later call returns it.
			for i := range 2 {
				if again := p.Disconnect(); again != err {
					t.Errorf("Disconnect() call %d = %v, want the cause %v again", i+2, again, err)
				}
			}
			if s := p.Runstate(); s != Idle {
				t.Errorf("runstate after more Disconnects = %v", s)
			}
		})
	}
}

// failingConn fails every write with err.
type failingConn struct {
	net.Conn
	err error
}

func (c failingConn) Write([]byte) (int, error) { return 0, c.err }

func TestWriterError(t *testing.T) {
	ours, theirs := net.Pipe()
	defer theirs.Close()
	ended := make(chan error, 1)
	p := New(Config{Ended: func(err error) { ended <- err }})
	if err := p.ConnectConn(context.Background(), failingConn{ours, syscall.EPIPE}); err != nil {
		t.Fatal(err)
	}
	if err := p.Send(context.Background(), []byte("hello")); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, ended)
	err := p.Disconnect()
	if want := "writing to peer: connection closed by peer: broken pipe"; !errors.Is(err, syscall.EPIPE) || err.Error() != want {
		t.Fatalf("Disconnect() = %v, want %s", err, want)
	}
}

func TestConcurrentSenders(t *testing.T) {
	const senders, each = 16, 200
	p := New(Config{})
	peer := pipeSession(t, p)

	seen := make(map[string]bool)
	readDone := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(peer)
		for len(seen) < senders*each && sc.Scan() {
			if seen[sc.Text()] {
				readDone <- fmt.Errorf("message %q arrived twice", sc.Text())
				return
			}
			seen[sc.Text()] = true
		}
		readDone <- sc.Err()
	}()

	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := p.Send(context.Background(), fmt.Appendf(nil, "%d-%d", g, i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := <-readDone; err != nil {
		t.Fatal(err)
	}
	if len(seen) != senders*each {
		t.Fatalf("peer saw %d distinct messages, want %d", len(seen), senders*each)
	}
	if err := p.Disconnect(); err != nil {
		t.Fatal(err)
	}
}

func TestEstablish(t *testing.T) {
	t.Run("ExchangesBeforeRunning", func(t *testing.T) {
		got := make(chan []byte, 1)
		p := New(Config{
			Establish: func(ctx context.Context, s *Session) error {
				greeting, err := s.Recv()
				if err != nil {
					return err
				}
				return s.Send(append([]byte("ack "), greeting...))
			},
			Handle: func(m []byte) error { got <- bytes.Clone(m); return nil },
		})
		ours, theirs := net.Pipe()
		defer theirs.Close()
		go func() {
			// The greeting and the first message arrive in one write: the
			// hook must not swallow the second.
			theirs.Write([]byte("hello\nfirst\n"))
		}()
		go func() {
			line, _ := bufio.NewReader(theirs).ReadString('\n')
			if line != "ack hello\n" {
				t.Errorf("peer got %q", line)
			}
		}()
		if err := p.ConnectConn(context.Background(), ours); err != nil {
			t.Fatal(err)
		}
		if m := <-got; string(m) != "first" {
			t.Errorf("first message = %q", m)
		}
		if err := p.Disconnect(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("FailureEndsIdle", func(t *testing.T) {
		bad := errors.New("bad greeting")
		p := New(Config{Establish: func(context.Context, *Session) error { return bad }})
		w := p.Watch()
		defer w.Close()
		ours, theirs := net.Pipe()
		defer theirs.Close()
		if err := p.ConnectConn(context.Background(), ours); err != bad {
			t.Fatalf("ConnectConn() = %v, want %v", err, bad)
		}
		for _, want := range badConnectionStates {
			if s := nextState(t, w); s != want {
				t.Fatalf("transition = %v, want %v", s, want)
			}
		}
		// The hook's failure closed the connection.
		if _, err := theirs.Write([]byte("x")); err == nil {
			t.Error("connection still open after a failed session hook")
		}
	})

	t.Run("DeadlineInterruptsRecv", func(t *testing.T) {
		p := New(Config{Establish: func(ctx context.Context, s *Session) error {
			_, err := s.Recv() // the peer never speaks
			return fmt.Errorf("reading greeting: %w", err)
		}})
		ours, theirs := net.Pipe()
		defer theirs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		err := p.ConnectConn(ctx, ours)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "reading greeting: ") {
			t.Fatalf("ConnectConn() = %v, want reading greeting: context deadline exceeded", err)
		}
		if s := p.Runstate(); s != Idle {
			t.Errorf("runstate = %v", s)
		}
	})

	t.Run("DisconnectAbandonsConnect", func(t *testing.T) {
		entered := make(chan struct{})
		p := New(Config{Establish: func(ctx context.Context, s *Session) error {
			close(entered)
			_, err := s.Recv()
			return err
		}})
		ours, theirs := net.Pipe()
		defer theirs.Close()
		result := make(chan error, 1)
		go func() { result <- p.ConnectConn(context.Background(), ours) }()
		<-entered
		if err := p.Disconnect(); err != nil {
			t.Fatalf("Disconnect() = %v", err)
		}
		if s := p.Runstate(); s != Idle {
			t.Errorf("runstate after Disconnect = %v", s)
		}
		if err := <-result; !errors.Is(err, context.Canceled) {
			t.Errorf("ConnectConn() = %v, want context.Canceled", err)
		}
	})
}

func TestSendFiles(t *testing.T) {
	t.Run("UNIX", func(t *testing.T) {
		p, _, theirs := unixSession(t)

		f, err := os.CreateTemp(t.TempDir(), "fd")
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("passed")
		defer f.Close()
		if err := p.SendFiles(context.Background(), []byte(`{"execute":"getfd"}`), f); err != nil {
			t.Fatal(err)
		}
		buf, oob := make([]byte, 64), make([]byte, syscall.CmsgSpace(4))
		n, oobn, _, _, err := theirs.ReadMsgUnix(buf, oob)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(buf[:n]); got != "{\"execute\":\"getfd\"}\n" {
			t.Errorf("message = %q", got)
		}
		msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			t.Fatalf("control messages: %v, %v", msgs, err)
		}
		got, err := syscall.ParseUnixRights(&msgs[0])
		if err != nil || len(got) != 1 {
			t.Fatalf("rights: %v, %v", got, err)
		}
		passed := os.NewFile(uintptr(got[0]), "passed")
		defer passed.Close()
		content := make([]byte, 6)
		if _, err := passed.ReadAt(content, 0); err != nil || string(content) != "passed" {
			t.Errorf("passed file reads %q, %v", content, err)
		}
	})

	t.Run("EndedWhileWriting", func(t *testing.T) {
		// The session ends while the writer is about to pass the
		// descriptor: SendFiles must not return (and its caller close
		// the file, whose number may then be reused) until the writer
		// is done with it.
		ours, theirs := unixPair(t)
		atSend, release := make(chan struct{}), make(chan struct{})
		testHookSendmsg = func() {
			close(atSend)
			<-release
		}
		defer func() { testHookSendmsg = nil }()
		p := New(Config{})
		if err := p.ConnectConn(context.Background(), ours); err != nil {
			t.Fatal(err)
		}
		defer p.Disconnect()
		var releasing sync.Once
		defer releasing.Do(func() { close(release) }) // before Disconnect, which waits for the writer

		returned := make(chan error, 1)
		go func() { returned <- p.SendFiles(context.Background(), []byte(`{"execute":"getfd"}`), os.Stdin) }()
		<-atSend
		theirs.Close() // the peer hangs up: the session ends
		for st, changed := p.RunstateChanged(); st == Running; st, changed = p.RunstateChanged() {
			<-changed
		}
		// SendFiles has seen the end, or will: wait till it either
		// returns (wrong) or waits for the writer.
		for !goroutineWaiting("protocol.(*Protocol).SendFiles", "chan receive") {
			select {
			case err := <-returned:
				t.Fatalf("SendFiles returned (%v) while the writer was still to pass its descriptor", err)
			default:
				runtime.Gosched()
			}
		}
		releasing.Do(func() { close(release) })
		if err := <-returned; err == nil {
			t.Error("SendFiles succeeded on a session that had ended")
		}
	})

	t.Run("NotUNIX", func(t *testing.T) {
		p := New(Config{})
		pipeSession(t, p)
		err := p.SendFiles(context.Background(), []byte("{}"), os.Stdin)
		if err == nil || err.Error() != "passing file descriptors needs a UNIX socket connection, not pipe" {
			t.Fatalf("SendFiles() = %v", err)
		}
	})

	t.Run("NotRunning", func(t *testing.T) {
		p := New(Config{Kind: "NullProtocol"})
		err := p.Send(context.Background(), []byte("{}"))
		var se *StateError
		if !errors.As(err, &se) || se.State != Idle || se.Required != Running || se.Error() != "NullProtocol is not connected." {
			t.Fatalf("Send() while IDLE = %v", err)
		}
	})
}

func TestAcceptUNIX(t *testing.T) {
	t.Run("PrivateWhateverTheUmask", func(t *testing.T) {
		old := syscall.Umask(0)
		defer syscall.Umask(old)
		path := filepath.Join(t.TempDir(), "qmp.sock")
		ln, err := listenUnixPrivate(path)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if mode := fi.Mode(); mode&os.ModeSocket == 0 || mode.Perm() != 0o600 {
			t.Errorf("socket mode = %v, want socket 0600", mode)
		}
	})

	t.Run("OnePeerThenRemoved", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "qmp.sock")
		listening := make(chan string, 1)
		p := New(Config{Listening: func(addr string) { listening <- addr }})
		result := make(chan error, 1)
		go func() { result <- p.Accept(context.Background(), path) }()
		if got := <-listening; got != "unix:"+path {
			t.Errorf("Listening(%q), want unix:%s", got, path)
		}
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := <-result; err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(path); !os.IsNotExist(err) {
			t.Errorf("socket still exists after accept: %v", err)
		}
		if err := p.Disconnect(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("RefusesLiveSocket", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "live.sock")
		ln, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		err = New(Config{}).Accept(context.Background(), path)
		var pe *SocketPathError
		if !errors.As(err, &pe) || pe.Path != path || !pe.Listening {
			t.Fatalf("Accept() = %v, want a *SocketPathError for a listened socket", err)
		}
		// The listener still has its socket: a client reaches it.
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatalf("the live socket was replaced: %v", err)
		}
		c.Close()
	})

	t.Run("RefusesNonSocket", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "precious")
		os.WriteFile(path, []byte("data"), 0o600)
		err := New(Config{}).Accept(context.Background(), path)
		var ce *ConnectError
		var pe *SocketPathError
		if !errors.As(err, &ce) || !errors.As(err, &pe) || pe.Path != path || pe.Listening {
			t.Fatalf("Accept() = %v", err)
		}
		if b, _ := os.ReadFile(path); string(b) != "data" {
			t.Error("the file was replaced")
		}
	})
}

func TestParseAddress(t *testing.T) {
	for _, tc := range []struct{ in, network, addr, err string }{
		{in: "/tmp/qmp.sock", network: "unix", addr: "/tmp/qmp.sock"},
		{in: "qmp.sock", network: "unix", addr: "qmp.sock"},
		{in: "./host:1234", network: "unix", addr: "./host:1234"},
		{in: "unix:host:1234", network: "unix", addr: "host:1234"},
		{in: "localhost:4444", network: "tcp", addr: "localhost:4444"},
		{in: "[::1]:4444", network: "tcp", addr: "[::1]:4444"},
		{in: ":4444", network: "tcp", addr: ":4444"},
		{in: "tcp:127.0.0.1:4444", network: "tcp", addr: "127.0.0.1:4444"},
		{in: "host:port", network: "unix", addr: "host:port"},
		{in: "tcp:nope", err: `address "tcp:nope": expected tcp:HOST:PORT`},
		{in: "localhost:65535", network: "tcp", addr: "localhost:65535"},
		{in: "localhost:99999", err: `address "localhost:99999": port 99999 out of range`},
		{in: "tcp:localhost:65536", err: `address "tcp:localhost:65536": expected tcp:HOST:PORT`},
		{in: "unix:", err: `address "unix:": empty socket path`},
		{in: "", err: "empty address"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			a, err := ParseAddress(tc.in)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || a.Network != tc.network || a.Addr != tc.addr {
				t.Fatalf("ParseAddress(%q) = %+v, %v", tc.in, a, err)
			}
			if back, _ := ParseAddress(a.String()); back != a {
				t.Errorf("String() %q does not parse back", a.String())
			}
		})
	}
}

func TestWatcherClose(t *testing.T) {
	p := New(Config{})
	w := p.Watch()
	result := make(chan error, 1)
	go func() {
		_, err := w.Next(context.Background())
		result <- err
	}()
	w.Close()
	if err := <-result; !errors.Is(err, ErrWatcherClosed) {
		t.Fatalf("Next() after Close = %v", err)
	}
	p.Disconnect() // no longer queued for the closed watcher
	if len(p.watchers) != 0 {
		t.Errorf("closed watcher still registered")
	}
}

func TestWaitForStateChange(t *testing.T) {
	p := New(Config{})
	if s, changed := p.RunstateChanged(); s != Idle {
		t.Fatalf("RunstateChanged() = %v, want IDLE", s)
	} else {
		select {
		case <-changed:
			t.Fatal("changed is closed before any transition")
		default:
		}
		defer func() {
			select {
			case <-changed:
			default:
				t.Error("changed is still open after a transition")
			}
		}()
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if p.WaitForStateChange(cancelled, Idle) {
		t.Error("WaitForStateChange(cancelled, IDLE) = true with no transition")
	}
	if !p.WaitForStateChange(cancelled, Running) {
		t.Error("WaitForStateChange(cancelled, RUNNING) = false while IDLE")
	}
	woke := make(chan bool, 1)
	go func() { woke <- p.WaitForStateChange(context.Background(), Idle) }()
	peer := pipeSession(t, p)
	if !<-woke {
		t.Error("WaitForStateChange(IDLE) = false after a connect")
	}
	// A lost session: the wait on RUNNING ends with the runstate it left for.
	go peer.Close()
	if !p.WaitForStateChange(context.Background(), Running) {
		t.Fatal("WaitForStateChange(RUNNING) = false after the peer hung up")
	}
	if s := p.Runstate(); s != Disconnecting {
		t.Errorf("runstate after the hang-up = %v, want DISCONNECTING", s)
	}
}

func TestTrace(t *testing.T) {
	type traced struct {
		dir Direction
		msg string
	}
	var mu sync.Mutex
	var got []traced
	handled := make(chan struct{}, 1)
	p := New(Config{
		Trace: func(dir Direction, msg []byte) {
			mu.Lock()
			got = append(got, traced{dir, string(msg)})
			mu.Unlock()
		},
		Handle: func([]byte) error { handled <- struct{}{}; return nil },
	})
	peer := pipeSession(t, p)
	go peer.Write([]byte("\n{\"in\": 1}\r\n"))
	<-handled
	if err := p.Send(context.Background(), []byte(`{"out": 2}`)); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(peer).ReadString('\n')
	if err != nil || line != "{\"out\": 2}\n" {
		t.Fatalf("peer read %q, %v", line, err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []traced{{Received, `{"in": 1}`}, {Sent, `{"out": 2}`}}
	if !slices.Equal(got, want) {
		t.Errorf("traced %v, want %v", got, want)
	}
	if Sent.String() != "-->" || Received.String() != "<--" {
		t.Errorf("Direction strings = %q, %q", Sent, Received)
	}
}

// TestUnterminated: with Config.Unterminated, messages go back to back,
// whichever way they are written: by the session hook, by SendNow
// itself, by the writer goroutine, with files.
func TestUnterminated(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]net.Conn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "end")
		conns[i], err = net.FileConn(f) // a dup
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	ours, theirs := conns[0], conns[1]
	defer theirs.Close()
	p := New(Config{
		Unterminated: true,
		Establish:    func(_ context.Context, s *Session) error { return s.Send([]byte(`{"hook":0}`)) },
	})
	if err := p.ConnectConn(context.Background(), ours); err != nil {
		t.Fatal(err)
	}
	defer p.Disconnect()
	ctx := context.Background()
	if err := p.SendNow(ctx, []byte(`{"now":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := p.Send(ctx, []byte(`{"queued":2}`)); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := p.SendFiles(ctx, []byte(`{"files":3}`), f); err != nil {
		t.Fatal(err)
	}
	want := `{"hook":0}{"now":1}{"queued":2}{"files":3}`
	got := make([]byte, len(want))
	if _, err := io.ReadFull(theirs, got); err != nil || string(got) != want {
		t.Fatalf("peer read %q, %v; want %q", got, err, want)
	}
}

// TestPeerReset: a peer that closes the connection with bytes of ours
// unread (QEMU quitting with a request pending) ends the session with a
// reset said plainly, not with Go's socket addresses.
func TestPeerReset(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Read(make([]byte, 1)) // one byte of the request; the rest stays unread
		c.Close()
	}()
	ended := make(chan error, 1)
	p := New(Config{Kind: "NullProtocol", Ended: func(err error) { ended <- err }})
	ctx := context.Background()
	if err := p.Connect(ctx, path); err != nil {
		t.Fatal(err)
	}
	defer p.Disconnect()
	if err := p.Send(ctx, []byte(`{"execute": "query-status"}`)); err != nil {
		t.Fatal(err)
	}
	cause := waitEnded(t, ended)
	if cause.Error() != "connection reset by peer" || !errors.Is(cause, syscall.ECONNRESET) {
		t.Errorf("cause %q (%#v); want %q, a syscall.ECONNRESET", cause, cause, "connection reset by peer")
	}
}

// goroutineWaiting reports whether a goroutine running fn is blocked
// with status (as a goroutine's header in a stack dump says it).
func goroutineWaiting(fn, status string) bool {
	buf := make([]byte, 1<<20)
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		if strings.Contains(header, "["+status) && strings.Contains(g, fn) {
			return true
		}
	}
	return false
}

// A peer that refuses writes but never ends its stream (it shut only its
// reading side) does not leave the session hanging: after writeGrace the
// refused write ends it. A send after the refusal is refused as the
// session's end would refuse it.
func TestRefusedWriteEndsAfterGrace(t *testing.T) {
	defer func(d time.Duration) { writeGrace = d }(writeGrace)
	writeGrace = 20 * time.Millisecond
	ours, theirs := unixPair(t)
	if err := theirs.CloseRead(); err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	p := New(Config{Ended: func(err error) { ended <- err }})
	if err := p.ConnectConn(context.Background(), ours); err != nil {
		t.Fatal(err)
	}
	defer p.Disconnect()
	var se *SessionEndedError
	if err := p.SendNow(context.Background(), []byte(`{"execute":"stop"}`)); !errors.As(err, &se) || !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("SendNow to a peer that shut its reading side = %v; want a SessionEndedError for the broken pipe", err)
	}
	if err := waitEnded(t, ended); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("the session ended with %v; want the refused write", err)
	}
}

// SendFiles returns when its context ends, even while the message waits
// behind others the peer is not reading, and the message then never
// goes: its descriptors may be other files by the time it would.
func TestSendFilesContext(t *testing.T) {
	p, _, theirs := unixSession(t)
	big := bytes.Repeat([]byte("x"), 4<<20) // more than the socket holds
	if err := p.Send(context.Background(), big); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p.SendFiles(ctx, []byte(`{"execute":"getfd"}`), os.Stdin); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SendFiles behind an unread message = %v; want its context's deadline", err)
	}
	if err := p.Send(context.Background(), []byte("after")); err != nil {
		t.Fatal(err)
	}
	// The peer reads everything up to "after": no descriptor, no getfd.
	var got []byte
	buf, oob := make([]byte, 64<<10), make([]byte, syscall.CmsgSpace(4))
	for !bytes.HasSuffix(got, []byte("after\n")) {
		theirs.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, oobn, _, _, err := theirs.ReadMsgUnix(buf, oob)
		if err != nil {
			t.Fatalf("reading: %v after %d bytes", err, len(got))
		}
		if oobn != 0 {
			t.Fatal("the abandoned message's descriptor reached the peer")
		}
		got = append(got, buf[:n]...)
	}
	if want := string(big) + "\nafter\n"; string(got) != want {
		t.Fatalf("the peer read %d bytes ending %q; want the big message and after", len(got), got[max(0, len(got)-40):])
	}
}

// unixPair returns two connected UNIX stream sockets, closed when the
// test ends.
func unixPair(t *testing.T) (ours, theirs *net.UnixConn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var conns [2]*net.UnixConn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "pair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c.(*net.UnixConn)
		t.Cleanup(func() { c.Close() })
	}
	return conns[0], conns[1]
}

// A session hook's Send to a peer that has hung up says so in the peer's
// terms, as the reader and writer do, not in Go's socket wording.
func TestSessionSendToClosedPeer(t *testing.T) {
	ours, theirs := unixPair(t)
	theirs.Close()
	p := New(Config{Establish: func(ctx context.Context, s *Session) error {
		if _, err := s.Recv(); !errors.Is(err, ErrClosedByPeer) {
			return fmt.Errorf("Recv from a closed peer: %v", err)
		}
		return s.Send([]byte(`{"execute":"qmp_capabilities"}`))
	}})
	err := p.ConnectConn(context.Background(), ours)
	if err == nil || err.Error() != "connection closed by peer: broken pipe" || !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("ConnectConn = %v; want the broken pipe said plainly", err)
	}
}

// SendFiles returns at its deadline also when the writer has taken its
// message up in a batch behind one the peer does not read: the writer
// waits in the flush before the message is claimed.
func TestSendFilesContextInBatch(t *testing.T) {
	p, ours, _ := unixSession(t)
	// The peer's buffer full, written around the protocol.
	ours.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	for chunk := bytes.Repeat([]byte(" "), 64<<10); ; {
		if _, err := ours.Write(chunk); err != nil {
			break
		}
	}
	ours.SetWriteDeadline(time.Time{})
	// Hold the writer until both messages are queued, so that it takes
	// them in one batch: the first goes to the buffer, the second's
	// flush waits.
	s := p.live.Load()
	s.wmu.Lock()
	if err := p.Send(context.Background(), bytes.Repeat([]byte("x"), 1000)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	ret := make(chan error, 1)
	go func() { ret <- p.SendFiles(ctx, []byte(`{"execute":"getfd"}`), os.Stdin) }()
	for s.queued.Load() != 2 {
		runtime.Gosched()
	}
	s.wmu.Unlock()
	select {
	case err := <-ret:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("SendFiles = %v; want its context's deadline", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("SendFiles outlived its 100ms context by 10s: the writer held its message in a blocked flush")
	}
}

// unixSession runs a Protocol with a plain Config over one of a pair of
// UNIX sockets (see unixPair) until the test ends, and returns it with
// both sockets: ours, under the protocol, and theirs, the peer's.
func unixSession(t *testing.T) (p *Protocol, ours, theirs *net.UnixConn) {
	t.Helper()
	ours, theirs = unixPair(t)
	p = New(Config{})
	if err := p.ConnectConn(context.Background(), ours); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Disconnect() })
	return p, ours, theirs
}

// The writer goroutine starts with the first message queued for it: a
// session whose messages all went through SendNow has none. A Send
// racing Disconnect starts no writer once Disconnect has returned (and
// none outlives it: goleak, in TestMain, would find it).
func TestWriterStartsWhenNeeded(t *testing.T) {
	p, _, theirs := unixSession(t)
	ctx := context.Background()
	peer := bufio.NewReader(theirs)
	line := func() string {
		t.Helper()
		l, err := peer.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	s := p.live.Load()
	if err := p.SendNow(ctx, []byte(`{"now":1}`)); err != nil {
		t.Fatal(err)
	}
	if l := line(); l != "{\"now\":1}\n" {
		t.Fatalf("peer read %q", l)
	}
	// This session's writer, by its receiver, in a stack dump: a
	// writer started without startWriter would show there.
	writer := fmt.Sprintf("(*session).writer(%p", s)
	if s.writing.Load() || goroutineWaiting(writer, "") {
		t.Fatal("the writer goroutine started for a message SendNow wrote itself")
	}
	if err := p.Send(ctx, []byte(`{"queued":2}`)); err != nil {
		t.Fatal(err)
	}
	if l := line(); l != "{\"queued\":2}\n" {
		t.Fatalf("peer read %q", l)
	}
	if !s.writing.Load() || !goroutineWaiting(writer, "") {
		t.Fatal("a queued message was written, but the writer goroutine is not marked started, or not found")
	}

	// Once the session has ended, nothing starts a writer (the race
	// below, made certain).
	p2, _, _ := unixSession(t)
	s2 := p2.live.Load()
	s2.end(nil)
	s2.startWriter()
	if s2.writing.Load() {
		t.Fatal("startWriter started a writer for a session that had ended")
	}
	p2.Disconnect()

	for range 200 {
		p, _, _ := unixSession(t)
		s := p.live.Load()
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			p.Send(ctx, []byte(`{"racing":3}`))
		}()
		p.Disconnect()
		started := s.writing.Load()
		<-sent
		if !started && s.writing.Load() {
			t.Fatal("a writer goroutine started after Disconnect returned")
		}
	}
}
