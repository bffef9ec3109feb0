package protocol

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultMaxMessageSize is the default limit on one incoming message,
// the limit libvirt and qemu.qmp use.
const DefaultMaxMessageSize = 10 << 20

// Config configures a Protocol. The zero value is a protocol that logs
// through slog.Default and drops every message it receives.
type Config struct {
	// Name identifies this instance in String and in log records.
	Name string
	// Kind is the type label used in String and in error messages, as
	// qemu.qmp uses the class name ("QMPClient is currently connecting.").
	// The default is "Protocol".
	Kind string
	// Logger receives log records; each carries a "logger" attribute,
	// "qmpsh.protocol" or "qmpsh.protocol.NAME". Default: slog.Default().
	Logger *slog.Logger
	// MaxMessageSize bounds one incoming message, excluding its line
	// terminator. Default: DefaultMaxMessageSize.
	MaxMessageSize int
	// Unterminated writes messages back to back, without the "\n" after
	// each, for a peer that splits its input as a JSON stream rather than
	// into lines, as QEMU, qemu-storage-daemon and qemu-ga do: to them a
	// newline is one more token to lex for nothing. Incoming messages
	// are lines either way.
	Unterminated bool

	// Establish runs once the transport is up and before the runstate
	// becomes Running, with exclusive use of the connection through s.
	// ctx carries the connect's deadline; a non-nil error aborts the
	// connection and is returned by Connect or Accept.
	Establish func(ctx context.Context, s *Session) error
	// Handle is called for each message received while Running, in
	// order, one at a time, by the reader goroutine or by a caller in
	// Read. msg is only valid until Handle returns (it is usually part of
	// the input buffer): Handle copies what it keeps, so that a flood of
	// messages nobody keeps costs no allocation. It must not block for
	// long: the next message is not read until it returns. A non-nil
	// error ends the session with that error.
	Handle func(msg []byte) error
	// Listening, if set, is called by Accept once its socket is ready for
	// the peer, with the address in "unix:PATH" or "tcp:HOST:PORT" form
	// (a TCP port of 0 is resolved), so a caller can tell QEMU where to
	// dial only when dialling can succeed.
	Listening func(addr string)
	// TLS configures the connections to and from "tls:HOST:PORT"
	// addresses (see tls.go); other addresses never use it.
	TLS *tls.Config
	// Ended is called once per session, as soon as the session ends,
	// with the cause: the first reader or writer error, or nil for a
	// local Disconnect. It is how the layer above fails pending work at
	// once instead of waiting for Disconnect.
	Ended func(cause error)
	// Drained, if set, is called each time the goroutine reading the
	// connection (the session hook's, then the reader or a caller in
	// Read) has consumed every complete message received so far and is
	// about to wait for more or to let go of the connection. It lets
	// Handle batch work, such as handing on events, and finish it before
	// the connection goes quiet. It is called once more when a read error
	// ends the session, before Ended.
	Drained func()
	// Yield, if set, lets callers read their own replies (see Read). It
	// is asked, between messages, whether nobody needs the reader
	// goroutine to read for now: true lets the reader goroutine leave the
	// connection to callers until Wake is called or Yield turns false.
	// It must be cheap and must not block.
	Yield func() bool
	// Trace, if set, is called with every message as it is written
	// (Sent) and as it is read (Received), the session hook's included,
	// without its line terminator. msg is valid only during the call (a
	// received one is part of the input buffer): Trace copies what it
	// keeps, so that tracing costs no copy it does not ask for. It is
	// called by the writer goroutine, by a caller writing its own request
	// (see SendNow) and by whoever reads, so calls may be concurrent; it
	// must not block for long. Unset, it costs nothing.
	Trace func(dir Direction, msg []byte)
}

// Direction says which way a traced message went.
type Direction int

const (
	// Sent is a message written to the peer.
	Sent Direction = iota + 1
	// Received is a message read from the peer.
	Received
)

// String returns the arrow qmpsh shows before a message: "-->" for Sent,
// "<--" for Received.
func (d Direction) String() string {
	switch d {
	case Sent:
		return "-->"
	case Received:
		return "<--"
	}
	return "Direction(" + strconv.Itoa(int(d)) + ")"
}

// Protocol is one end of a message stream. Its methods are safe for
// concurrent use.
type Protocol struct {
	cfg  Config
	kind string
	log  *slog.Logger

	mu          sync.Mutex // guards the fields below and serializes transitions
	state       Runstate
	changed     chan struct{}      // closed and replaced at each transition
	sess        *session           // the session being run or torn down
	stopConnect context.CancelFunc // set while Connecting
	connectDone chan struct{}      // closed when a connect attempt leaves Connecting
	endErr      error              // why the last session ended

	live atomic.Pointer[session] // the Running session, for a lock-free Send

	disconnectMu sync.Mutex // one Disconnect at a time

	watchMu  sync.Mutex
	watchers []*Watcher
}

// New returns an idle Protocol.
func New(cfg Config) *Protocol {
	if cfg.Kind == "" {
		cfg.Kind = "Protocol"
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = DefaultMaxMessageSize
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logName := "qmpsh.protocol"
	if cfg.Name != "" {
		logName += "." + cfg.Name
	}
	return &Protocol{cfg: cfg, kind: cfg.Kind, log: logger.With("logger", logName), changed: make(chan struct{})}
}

// Name returns the configured name, "" when none was given.
func (p *Protocol) Name() string { return p.cfg.Name }

// Logger returns the logger this Protocol writes to.
func (p *Protocol) Logger() *slog.Logger { return p.log }

// String describes the protocol like qemu.qmp's repr:
// <Kind name='NAME' runstate=STATE>, without the name part when unnamed.
func (p *Protocol) String() string {
	if p.cfg.Name != "" {
		return fmt.Sprintf("<%s name='%s' runstate=%s>", p.kind, p.cfg.Name, p.Runstate())
	}
	return fmt.Sprintf("<%s runstate=%s>", p.kind, p.Runstate())
}

// Runstate returns the current runstate.
func (p *Protocol) Runstate() Runstate {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state
}

// RunstateChanged returns the current runstate and a channel that is
// closed at the next transition, for a caller that waits for a change
// alongside other channels: after the channel is closed, call it again
// for the new state. Taken together under one lock, the two leave no gap
// in which a transition could be missed.
func (p *Protocol) RunstateChanged() (Runstate, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state, p.changed
}

// WaitForStateChange waits until the runstate is other than lastSeen and
// reports true, or reports false if ctx ends first. Like grpc's
// ClientConn.WaitForStateChange, it returns at once when the runstate
// already differs, and true after any transition, even one that came
// back to lastSeen. Use Watch to see every transition instead.
func (p *Protocol) WaitForStateChange(ctx context.Context, lastSeen Runstate) bool {
	s, changed := p.RunstateChanged()
	if s != lastSeen {
		return true
	}
	select {
	case <-changed:
		return true
	case <-ctx.Done():
		return false
	}
}

// Err returns why the last session ended: nil while it runs, when
// Disconnect ended it, or before the first one.
func (p *Protocol) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.endErr
}

// Watch returns a Watcher that sees every transition from now on.
func (p *Protocol) Watch() *Watcher {
	w := &Watcher{p: p, wake: make(chan struct{}, 1)}
	p.watchMu.Lock()
	p.watchers = append(p.watchers, w)
	p.watchMu.Unlock()
	return w
}

// setState records a transition and queues it for every watcher. The
// caller holds p.mu, which orders transitions.
func (p *Protocol) setState(s Runstate) {
	if p.log.Enabled(context.Background(), slog.LevelDebug) {
		p.log.Debug("Transitioning from '" + p.state.String() + "' to '" + s.String() + "'.")
	}
	p.state = s
	close(p.changed)
	p.changed = make(chan struct{})
	p.watchMu.Lock()
	for _, w := range p.watchers {
		w.push(s)
	}
	p.watchMu.Unlock()
}

// Connect dials addr (see ParseAddress) and runs the session hook. On
// success the runstate is Running. A transport failure returns a
// *ConnectError; an ended ctx returns ctx's error; either way the
// protocol is back to Idle.
func (p *Protocol) Connect(ctx context.Context, addr string) error {
	a, err := ParseAddress(addr)
	if err != nil {
		return err
	}
	return p.start(ctx, func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, a.Network, a.Addr)
		if err != nil || !a.TLS {
			return conn, err
		}
		return clientHandshake(ctx, conn, a, p.cfg.TLS)
	})
}

// Accept listens on addr, waits for exactly one peer, stops listening,
// and runs the session hook. A UNIX socket it creates is mode 0600 from
// the moment it can accept, and is removed once the peer is accepted; an
// existing file there that is not a socket is never replaced. Errors and
// runstates are as for Connect.
func (p *Protocol) Accept(ctx context.Context, addr string) error {
	a, err := ParseAddress(addr)
	if err != nil {
		return err
	}
	return p.start(ctx, func(ctx context.Context) (net.Conn, error) {
		return listenOnce(ctx, a, p.cfg.TLS, p.cfg.Listening)
	})
}

// ConnectConn runs a session over conn, which the caller has already
// connected (TLS, vsock, an SSH tunnel, a net.Pipe in tests). The Protocol
// owns conn from then on and closes it when the session ends, or at once
// if the session hook fails. It returns a *StateError, leaving conn to the
// caller, if the protocol is not Idle.
func (p *Protocol) ConnectConn(ctx context.Context, conn net.Conn) error {
	return p.start(ctx, func(context.Context) (net.Conn, error) { return conn, nil })
}

func (p *Protocol) start(parent context.Context, open func(context.Context) (net.Conn, error)) error {
	p.mu.Lock()
	if err := requireIdle(p.kind, p.state); err != nil {
		p.mu.Unlock()
		return err
	}
	// Disconnect cancels ctx to abandon the attempt; parent's own error
	// is told apart from that by asking parent.
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	p.stopConnect, p.connectDone = cancel, done
	p.setState(Connecting)
	p.mu.Unlock()

	conn, err := open(ctx)
	if err != nil {
		p.abortConnect()
		// The dialer enforces ctx's deadline with its own timer, which can
		// fire just before ctx's: both mean the deadline was reached.
		if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
			return context.DeadlineExceeded
		}
		if ctx.Err() != nil {
			return p.ctxErr(parent)
		}
		p.log.Debug("connection failed", "err", err)
		return &ConnectError{Message: "failed to establish connection", Err: err}
	}

	s := newSession(p, conn)
	if p.cfg.Establish != nil {
		if err := s.establish(ctx); err != nil {
			conn.Close()
			p.abortConnect()
			if ctx.Err() != nil && parent.Err() == nil {
				return p.ctxErr(parent)
			}
			return err
		}
	}

	p.mu.Lock()
	if ctx.Err() != nil { // cancelled as the hook finished
		p.mu.Unlock()
		conn.Close()
		p.abortConnect()
		return p.ctxErr(parent)
	}
	p.sess = s
	p.endErr = nil
	p.stopConnect, p.connectDone = nil, nil
	p.setState(Running)
	p.live.Store(s)
	s.run()
	p.mu.Unlock()
	return nil
}

// ctxErr is the error for an attempt whose context ended: the caller's
// own context error, or context.Canceled when Disconnect abandoned it.
func (p *Protocol) ctxErr(parent context.Context) error {
	if err := parent.Err(); err != nil {
		return err
	}
	return fmt.Errorf("connect abandoned by Disconnect: %w", context.Canceled)
}

func (p *Protocol) abortConnect() {
	p.mu.Lock()
	p.stopConnect, p.connectDone = nil, nil
	p.setState(Disconnecting)
	p.setState(Idle)
	p.mu.Unlock()
}

// Send queues msg (one message, without line terminator) for the writer
// goroutine. It returns once the message is queued; a write failure ends
// the session and is reported by Disconnect. It fails with a *StateError
// unless Running, and with ctx's error if the queue stays full until ctx
// ends.
func (p *Protocol) Send(ctx context.Context, msg []byte) error {
	s, err := p.running()
	if err != nil {
		return err
	}
	return s.enqueue(ctx, outgoing{msg: msg})
}

// SendNow is Send for a message someone is waiting on. When nothing is
// queued or being written and the connection takes the whole message at
// once, SendNow writes it itself, sparing the writer goroutine a wake-up
// (which costs a lone request a good part of its round trip); otherwise
// it queues it as Send does. Either way it never waits for the peer.
// Send remains the better choice for many messages at once, which the
// writer goroutine batches.
func (p *Protocol) SendNow(ctx context.Context, msg []byte) error {
	s, err := p.running()
	if err != nil {
		return err
	}
	done, traced := s.writeNow(msg)
	if done {
		return nil
	}
	return s.enqueue(ctx, outgoing{msg: msg, traced: traced})
}

// SendFiles sends msg with files attached as SCM_RIGHTS ancillary data,
// as QEMU's getfd and add-fd expect, and returns once it is written (so
// the caller may close its copies). It needs a UNIX socket connection.
// When ctx ends, or the session, before the writer has taken the message
// up (it does once what was sent before has gone), it returns at once and
// the message is never written; once taken up, its sendmsg is awaited.
func (p *Protocol) SendFiles(ctx context.Context, msg []byte, files ...*os.File) error {
	s, err := p.running()
	if err != nil {
		return err
	}
	if _, ok := s.conn.(*net.UnixConn); !ok {
		return fmt.Errorf("passing file descriptors needs a UNIX socket connection, not %s", s.conn.LocalAddr().Network())
	}
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	result := make(chan error, 1)
	claim := new(atomic.Int32)
	if err := s.enqueue(ctx, outgoing{msg: msg, fds: fds, result: result, claim: claim}); err != nil {
		return err
	}
	var why error
	select {
	case err := <-result:
		return err
	case <-ctx.Done():
		why = ctx.Err()
	case <-s.done:
		why = s.endErr()
	}
	// Once this returns the caller closes the files, and their numbers
	// may be reused for files that must never reach the peer: the message
	// goes unwritten, unless the writer has claimed it already, and then
	// its outcome is awaited.
	if claim.CompareAndSwap(unclaimed, abandoned) {
		return why
	}
	return <-result
}

// The claim on a message with descriptors (outgoing.claim): the writer
// takes it to write the message, or SendFiles to abandon it.
const (
	unclaimed = iota
	writing
	abandoned
)

func (p *Protocol) running() (*session, error) {
	if s := p.live.Load(); s != nil {
		return s, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == Running { // the session is ending but not yet marked
		return nil, requireRunning(p.kind, Disconnecting)
	}
	return nil, requireRunning(p.kind, p.state)
}

// Disconnect ends the session: it stops the reader and writer, closes the
// transport, waits for the session's goroutines, and returns the first
// error the session hit (nil when it ended only because of a Disconnect).
// A connect or accept in progress is abandoned. The protocol is Idle when
// Disconnect returns, whatever happened; calling it again is harmless and
// returns the same cause, as Err does, until another session starts.
func (p *Protocol) Disconnect() error {
	p.disconnectMu.Lock()
	defer p.disconnectMu.Unlock()

	p.mu.Lock()
	switch p.state {
	case Idle:
		p.setState(Disconnecting)
		p.setState(Idle)
		err := p.endErr
		p.mu.Unlock()
		return err
	case Connecting:
		// Cancelling under p.mu means start cannot slip into Running.
		p.stopConnect()
		done := p.connectDone
		p.mu.Unlock()
		<-done
		return p.Err()
	}
	s := p.sess
	p.mu.Unlock()

	s.end(nil)
	s.wg.Wait()
	s.waitReaders()

	p.mu.Lock()
	p.sess = nil
	p.setState(Idle)
	p.mu.Unlock()
	return s.err
}

// scheduleDisconnect ends the running session with cause without waiting,
// leaving the protocol Disconnecting: what a reader or writer error does.
func (p *Protocol) scheduleDisconnect(cause error) {
	p.mu.Lock()
	s := p.sess
	p.mu.Unlock()
	if s != nil {
		s.end(cause)
	}
}

// Session gives the session hook exclusive, synchronous use of a new
// connection before the reader and writer goroutines start.
type Session struct {
	ctx context.Context
	s   *session
}

// Recv reads the next message. If the connect's context ends while it
// waits, it returns that context's error.
func (ss *Session) Recv() ([]byte, error) {
	msg, err := ss.s.read()
	if err != nil {
		if ctxErr := ss.ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, err
	}
	return bytes.Clone(msg), nil
}

// Send writes msg and flushes it.
func (ss *Session) Send(msg []byte) error {
	err := ss.s.write(msg)
	if err == nil {
		err = ss.s.w.Flush()
	}
	if err == nil {
		return nil
	}
	if ctxErr := ss.ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	return plainPeerError(err)
}

// Conn returns the underlying connection, for its addresses.
func (ss *Session) Conn() net.Conn { return ss.s.conn }

type outgoing struct {
	msg    []byte
	traced bool // logged and traced already, by writeNow
	fds    []int
	result chan error    // for SendFiles: the write's outcome
	claim  *atomic.Int32 // for SendFiles: who has the message; see unclaimed
}

// session is one connection's worth of state, from transport-up to the
// end of its goroutines.
type session struct {
	p    *Protocol
	conn net.Conn
	w    *bufio.Writer
	out  chan outgoing

	// Whoever holds rmu, the read token, reads the connection through rd
	// and calls Handle: the reader goroutine, or a caller in Read while
	// the reader goroutine has yielded.
	rmu     sync.Mutex
	rd      readSide
	yields  bool          // Read may be used: Config.Yield is set and conn takes read deadlines
	over    atomic.Bool   // done is closed: cheaper to check per message
	resume  chan struct{} // capacity 1: wakes a yielded reader goroutine
	untimed atomic.Bool   // the yielded reader goroutine waits for a Read to wake it
	reads   atomic.Uint64 // Reads so far, for the reader's idle check
	// A Read's context interrupts it; see watch.
	dlMu    sync.Mutex      // guards reading and dlSet
	reading <-chan struct{} // the Done channel of the Read under way
	dlSet   bool

	// The writer goroutine holds wmu while it writes; writeNow writes
	// only if it gets wmu and nothing is queued, so messages keep their
	// order. queued counts the messages enqueued and not yet written.
	raw     syscall.RawConn // nil when conn has no file descriptor
	wmu     sync.Mutex
	queued  atomic.Int64
	scratch []byte                // writeNow's buffer, under wmu
	writeFn func(fd uintptr) bool // s.writeScratch; under wmu
	wn      int                   // writeScratch's outcome; under wmu
	werr    error
	tail    []byte // what writeNow could not write, for the writer; under wmu
	kick    chan struct{}
	// The writer goroutine starts when first needed; see startWriter.
	startMu sync.Mutex  // orders starting it with the session's end (over)
	writing atomic.Bool // it has been started
	// wfail is the write the peer refused (see writeFailed); once set,
	// nothing more is written.
	wfail atomic.Pointer[failedWrite]
	grace atomic.Pointer[time.Timer] // ends the session if the stream does not end; see writeFailed

	done    chan struct{} // closed when the session ends
	endOnce sync.Once
	err     error // the cause; written once, before done is closed
	wg      sync.WaitGroup
}

func newSession(p *Protocol, conn net.Conn) *session {
	s := &session{
		p:      p,
		conn:   conn,
		w:      bufio.NewWriterSize(conn, 64<<10),
		out:    make(chan outgoing, 1024),
		kick:   make(chan struct{}, 1),
		resume: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	s.rd.in.conn, s.rd.in.drained = conn, p.cfg.Drained
	if sc, ok := conn.(syscall.Conn); ok {
		s.raw, _ = sc.SyscallConn()
	}
	// A caller's Read can only be interrupted through a read deadline.
	s.yields = p.cfg.Yield != nil && conn.SetReadDeadline(time.Time{}) == nil
	return s
}

// readSide is the state of a session's reading, which only the holder of
// the read token (session.rmu) touches: the session hook before the
// reader goroutine starts, then the reader goroutine or a caller in Read.
type readSide struct {
	in      input
	partial []byte // what an interrupted Read got of a message
	// The context registered to interrupt Reads; see session.watch.
	watched   <-chan struct{} // its Done channel
	stopWatch func() bool     // unregisters it
}

// aLongTimeAgo is a deadline in the past: setting it makes blocked I/O
// return at once, which is how a context interrupts the session hook.
var aLongTimeAgo = time.Unix(1, 0)

func (s *session) establish(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.conn.SetDeadline(aLongTimeAgo) })
	err := s.p.cfg.Establish(ctx, &Session{ctx: ctx, s: s})
	if !stop() && err == nil {
		// The deadline was (or is being) set: the connection is unusable.
		err = ctx.Err()
	}
	return err
}

func (s *session) run() {
	s.wg.Add(1)
	go s.reader()
}

// startWriter starts the writer goroutine, the first time something is
// queued for it: a session whose messages all go out through SendNow (a
// lone call at a time, as qmpsh exec makes) never needs it. Not starting
// it made qmpsh exec query-status about 0.15 ms (1%) faster, in 200
// interleaved runs of three copies of each binary, built static and not:
// a new goroutine wakes a second thread, on two CPUs shared with QEMU.
// Once the session is over it starts nothing: Disconnect's wait for the
// goroutines comes after the end, so whatever started before it is
// waited for.
func (s *session) startWriter() {
	if s.writing.Load() {
		return
	}
	s.startMu.Lock()
	defer s.startMu.Unlock()
	if s.writing.Load() || s.over.Load() {
		return
	}
	s.wg.Add(1)
	s.writing.Store(true)
	go s.writer()
}

// end records cause (the first one wins), closes the transport so the
// session's goroutines stop, marks the protocol Disconnecting, and tells
// the layer above. It does not wait.
func (s *session) end(cause error) {
	s.endOnce.Do(func() {
		s.err = cause
		s.startMu.Lock() // no writer starts after this: see startWriter
		s.over.Store(true)
		s.startMu.Unlock()
		if t := s.grace.Load(); t != nil {
			t.Stop()
		}
		close(s.done)
		s.conn.Close()
		p := s.p
		// The cause is recorded before Send can fail for this session's
		// end, so whoever sees that failure can ask Err why.
		p.mu.Lock()
		if p.sess == s {
			p.endErr = cause
		}
		p.mu.Unlock()
		p.live.CompareAndSwap(s, nil)
		p.mu.Lock()
		if p.sess == s && p.state == Running {
			p.setState(Disconnecting)
		}
		p.mu.Unlock()
		if cause != nil {
			p.log.Debug("session ended", "err", cause)
		}
		if p.cfg.Ended != nil {
			p.cfg.Ended(cause)
		}
	})
}

// failedWrite is the error of the write the peer refused.
type failedWrite struct{ err error }

// writeGrace bounds how long a session whose peer refused a write waits
// for the end of the stream (see writeFailed). Tests change it.
var writeGrace = time.Second

// writeFailed ends the session for a failed write, err. A peer that
// closed the connection (EPIPE: QEMU exiting after quit) may have written
// replies first, which are still to be read: the session is then left to
// the reader, which hands them on and ends it at the end of the stream,
// with the peer's close as the cause; nothing more is written, and a send
// is refused as the session's end would refuse it. A peer that shut only
// its reading side would never end the stream: err ends the session after
// writeGrace.
func (s *session) writeFailed(err error) {
	if !errors.Is(err, syscall.EPIPE) {
		s.end(err)
		return
	}
	if !s.wfail.CompareAndSwap(nil, &failedWrite{err}) {
		return
	}
	s.p.log.Debug("the peer refused a write; reading what it sent before it closed", "err", err)
	s.grace.Store(time.AfterFunc(writeGrace, func() { s.end(err) }))
	if s.over.Load() { // ended meanwhile, perhaps before the timer was there to stop
		s.grace.Load().Stop()
	}
	s.wake() // a reader goroutine that yielded reads now
}

// endErr is what a call caught by the session's end returns.
func (s *session) endErr() error { return &SessionEndedError{Cause: s.err} }

func (s *session) enqueue(ctx context.Context, m outgoing) error {
	select {
	case <-s.done:
		return s.endErr()
	default:
	}
	if f := s.wfail.Load(); f != nil {
		return &SessionEndedError{Cause: f.err} // ending: see writeFailed
	}
	s.queued.Add(1)
	s.startWriter()
	select {
	case s.out <- m:
		return nil
	case <-s.done:
		s.queued.Add(-1)
		return s.endErr()
	case <-ctx.Done():
		s.queued.Add(-1)
		return ctx.Err()
	}
}

// writeNow writes msg from the calling goroutine if it can do so at once
// and in order, and reports whether it did (or the write failed, ending
// the session), and whether it traced msg, which it does before writing,
// so that the trace shows a request before its reply. It makes one
// non-blocking write: what the connection does not take goes to the
// writer goroutine, which writes it before anything else.
func (s *session) writeNow(msg []byte) (done, traced bool) {
	if s.raw == nil || s.queued.Load() != 0 || s.wfail.Load() != nil || !s.wmu.TryLock() {
		return false, false
	}
	defer s.wmu.Unlock()
	if s.queued.Load() != 0 || s.tail != nil {
		return false, false
	}
	select {
	case <-s.done:
		return false, false
	default:
	}
	s.scratch = append(s.scratch[:0], msg...)
	if !s.p.cfg.Unterminated {
		s.scratch = append(s.scratch, '\n')
	}
	if s.writeFn == nil {
		s.writeFn = s.writeScratch // one closure for the session, not one per call
	}
	s.logOut(msg)
	if rerr := s.raw.Write(s.writeFn); rerr != nil {
		return false, true // closed under us: enqueue reports why
	}
	n, err := s.wn, s.werr
	if err == syscall.EAGAIN || n == 0 && err == nil {
		return false, true // the connection is full: queue it
	}
	if err != nil {
		s.writeFailed(fmt.Errorf("writing to peer: %w", plainPeerError(&net.OpError{Op: "write", Net: s.conn.LocalAddr().Network(),
			Source: s.conn.LocalAddr(), Addr: s.conn.RemoteAddr(), Err: os.NewSyscallError("write", err)})))
		return false, true // unwritten: enqueue says why
	}
	if n < len(s.scratch) {
		s.tail = append([]byte(nil), s.scratch[n:]...)
		s.startWriter()
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	if cap(s.scratch) > 64<<10 {
		s.scratch = nil // do not keep a huge message's buffer
	}
	return true, true
}

// writeScratch makes one write of s.scratch, for writeNow, which holds
// wmu.
func (s *session) writeScratch(fd uintptr) bool {
	s.wn, s.werr = WriteFD(fd, s.scratch)
	return true // done, whatever happened: never wait here
}

// WriteFD makes one write(2) of b to fd, again only when a signal
// interrupted it. Called in a syscall.RawConn's Write callback, on a
// descriptor Go keeps non-blocking, it never waits: a full connection
// is syscall.EAGAIN, or a short count.
func WriteFD(fd uintptr, b []byte) (int, error) {
	for {
		n, err := syscall.Write(int(fd), b)
		if err != syscall.EINTR {
			return n, err
		}
	}
}

func (s *session) reader() {
	defer s.wg.Done()
	handle, drained, yield := s.p.cfg.Handle, s.p.cfg.Drained, s.p.cfg.Yield
	s.rmu.Lock()
	for {
		if s.over.Load() {
			// Ended by a caller's Read or by Disconnect: what is still
			// buffered must not reach anyone now.
			if drained != nil {
				drained()
			}
			s.unwatch()
			s.rmu.Unlock()
			return
		}
		msg, err := s.read()
		if err == nil && handle != nil {
			err = handle(msg)
		}
		if err != nil {
			if drained != nil {
				drained()
			}
			s.end(err) // before letting go, so no Read handles what follows
			s.unwatch()
			s.rmu.Unlock()
			return
		}
		if !s.yields || s.rd.in.buffered() != 0 || !yield() {
			continue
		}
		if drained != nil {
			drained()
		}
		s.rmu.Unlock()
		if !s.park() {
			s.rmu.Lock() // a Read under way stops: the connection is closed
			s.unwatch()
			s.rmu.Unlock()
			return
		}
	}
}

func (s *session) writer() {
	defer s.wg.Done()
	for {
		var err error
		select {
		case m := <-s.out:
			s.wmu.Lock()
			err = s.writeTail()
			if err == nil {
				err = s.send(m)
				s.queued.Add(-1)
			}
			// Drain what queued meanwhile so a burst costs one flush.
			yielded := false
			for err == nil {
				select {
				case m = <-s.out:
					err = s.send(m)
					s.queued.Add(-1)
					continue
				default:
				}
				if !yielded {
					yielded = true
					runtime.Gosched()
					continue
				}
				break
			}
		case <-s.kick:
			s.wmu.Lock()
			err = s.writeTail()
		case <-s.done:
			return
		}
		if err == nil {
			err = s.w.Flush()
		}
		s.wmu.Unlock()
		if err != nil {
			s.writeFailed(fmt.Errorf("writing to peer: %w", plainPeerError(err)))
			return
		}
	}
}

// writeTail buffers what writeNow left over. The caller holds wmu.
func (s *session) writeTail() error {
	if s.tail == nil {
		return nil
	}
	_, err := s.w.Write(s.tail)
	s.tail = nil
	return err
}

func (s *session) send(m outgoing) error {
	if m.fds == nil {
		if !m.traced {
			s.logOut(m.msg)
		}
		return s.buffer(m.msg)
	}
	err := s.writeWithFiles(m)
	m.result <- err // buffered: unread when SendFiles gave up
	return err
}

// testHookSendmsg, when set by a test, runs just before the sendmsg that
// passes descriptors, with wmu held.
var testHookSendmsg func()

// writeWithFiles writes one message in a single sendmsg carrying the
// descriptors, after flushing what is buffered, so the peer sees the
// descriptors arrive with this message's bytes. It claims the message
// after the flush, which waits for the peer as long as the peer does not
// read: until then SendFiles may give it up, and then nothing of it is
// written.
func (s *session) writeWithFiles(m outgoing) error {
	if err := s.w.Flush(); err != nil {
		return err
	}
	if !m.claim.CompareAndSwap(unclaimed, writing) {
		return nil // SendFiles gave up on it: fds may be others' files by now
	}
	s.logOut(m.msg)
	b := append(make([]byte, 0, len(m.msg)+1), m.msg...)
	if !s.p.cfg.Unterminated {
		b = append(b, '\n')
	}
	if testHookSendmsg != nil {
		testHookSendmsg()
	}
	n, _, err := s.conn.(*net.UnixConn).WriteMsgUnix(b, syscall.UnixRights(m.fds...), nil)
	if err == nil && n < len(b) {
		_, err = s.conn.Write(b[n:])
	}
	return err
}

func (s *session) write(msg []byte) error {
	s.logOut(msg)
	return s.buffer(msg)
}

// buffer writes msg, and its terminator, to the buffered writer.
func (s *session) buffer(msg []byte) error {
	if _, err := s.w.Write(msg); err != nil || s.p.cfg.Unterminated {
		return err
	}
	return s.w.WriteByte('\n')
}

// logOut logs and traces a message being written.
func (s *session) logOut(msg []byte) {
	if trace := s.p.cfg.Trace; trace != nil {
		trace(Sent, msg)
	}
	if s.p.log.Enabled(context.Background(), slog.LevelDebug) {
		s.p.log.Debug("--> " + string(msg))
	}
}

// read returns the next non-empty line without its "\n" or "\r\n". The
// slice may be the input buffer's: it is valid until the next read. A
// line over the limit is an error; it is never buffered beyond the limit.
func (s *session) read() ([]byte, error) {
	limit := s.p.cfg.MaxMessageSize
	buf := s.rd.partial // the start of a line longer than the input buffer
	s.rd.partial = nil
	for {
		chunk, complete := s.rd.in.line()
		if len(buf)+len(chunk) > limit+2 { // +2: the terminator is not counted
			return nil, &MessageTooLongError{Limit: limit}
		}
		if complete {
			var msg []byte
			if buf == nil {
				msg = trimEOL(chunk)
				if len(msg) == 0 {
					continue // tolerate blank lines between messages
				}
			} else {
				msg = trimEOL(append(buf, chunk...))
				buf = nil
				if len(msg) == 0 {
					continue
				}
			}
			if len(msg) > limit {
				return nil, &MessageTooLongError{Limit: limit}
			}
			s.rd.in.long = len(msg) >= len(s.rd.in.buf)/8
			// Traced and logged here, not in a function of its own:
			// read is the hot path, and this spares a call per message.
			if trace := s.p.cfg.Trace; trace != nil {
				trace(Received, msg)
			}
			if s.p.log.Enabled(context.Background(), slog.LevelDebug) {
				s.p.log.Debug("<-- " + string(msg))
			}
			return msg, nil
		}
		if s.rd.in.full() {
			buf = append(buf, s.rd.in.take()...)
		}
		switch err := s.rd.in.fill(); err {
		case nil:
		case io.EOF:
			if n := len(buf) + s.rd.in.buffered(); n > 0 {
				return nil, fmt.Errorf("connection closed in the middle of a message (%d bytes of it read): %w",
					n, io.ErrUnexpectedEOF)
			}
			return nil, ErrClosedByPeer
		default:
			if deadlineError(err) {
				// A Read interrupted (see watch): keep what came of the
				// message for the next read (the input buffer keeps the
				// rest).
				s.rd.partial = buf
			}
			return nil, plainPeerError(err)
		}
	}
}

// input buffers what is read from the connection. It starts small and
// doubles, up to maxInput, each time a read fills it: under a flood a
// read then takes all the socket holds, so that the peer can write again
// at once while the reader works through it, instead of the two taking
// turns at a small buffer. After a run of reads that leave it mostly
// empty it shrinks back, unless the last message was a long one: long
// messages tend to follow long ones, and may come in pieces too small to
// stop the run.
type input struct {
	conn    net.Conn
	drained func() // Config.Drained
	buf     []byte // buf[r:w] is read and not yet consumed
	r, w    int
	grow    bool  // the last read filled buf
	small   int   // reads in a row that left buf mostly empty
	long    bool  // the last message took an eighth of buf: keep buf for the next
	err     error // from a read that also returned data
}

const (
	minInput = 64 << 10
	maxInput = 512 << 10
)

// line returns the next line, "\n" included, and true; or, when no whole
// line is buffered, what there is of one and false.
func (in *input) line() ([]byte, bool) {
	b := in.buf[in.r:in.w]
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		in.r += i + 1
		return b[: i+1 : i+1], true
	}
	return b, false
}

func (in *input) buffered() int { return in.w - in.r }

// full reports whether the buffer holds nothing but part of one line.
func (in *input) full() bool { return in.w-in.r == len(in.buf) && len(in.buf) > 0 }

// take consumes what is buffered, which stays valid until the next fill.
func (in *input) take() []byte {
	b := in.buf[in.r:in.w]
	in.r = in.w
	return b
}

// fill reads more, calling drained first: the caller found no complete
// line, which is when Config.Drained is due.
func (in *input) fill() error {
	if err := in.err; err != nil {
		in.err = nil
		// A deadline that came with data may be stale by now (see
		// session.watch); if it still holds, the read below says so.
		if !deadlineError(err) {
			return err
		}
	}
	n := in.w - in.r
	size := len(in.buf)
	switch {
	case size == 0:
		size = minInput
	case in.grow && size < maxInput:
		size *= 2
	case in.small >= 16 && size > minInput && n <= minInput/2 && !in.long:
		size = minInput
	}
	if size != len(in.buf) {
		buf := make([]byte, size)
		copy(buf, in.buf[in.r:in.w])
		in.buf = buf
	} else if in.r > 0 {
		copy(in.buf, in.buf[in.r:in.w])
	}
	in.r, in.w = 0, n
	if in.drained != nil {
		in.drained()
	}
	for range 100 { // as bufio.Reader, give up on a reader stuck at 0, nil
		m, err := in.conn.Read(in.buf[in.w:])
		in.grow = in.w+m == len(in.buf)
		// Small is what leaves the buffer mostly empty: a long line that
		// comes a little at a time needs the buffer it grew.
		if in.w+m < len(in.buf)/8 {
			in.small++
		} else {
			in.small = 0
		}
		in.w += m
		switch {
		case m > 0:
			in.err = err
			return nil
		case err != nil:
			return err
		}
	}
	return io.ErrNoProgress
}

func trimEOL(b []byte) []byte {
	n := len(b)
	if n > 0 && b[n-1] == '\n' {
		n--
	}
	if n > 0 && b[n-1] == '\r' {
		n--
	}
	return b[:n]
}
