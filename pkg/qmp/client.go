package qmp

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"net"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qmpsh/qmpsh/pkg/protocol"
	"github.com/qmpsh/qmpsh/pkg/wire"
)

// DefaultEventBacklog is how many undelivered events a Listener holds
// before it drops new ones.
const DefaultEventBacklog = 1 << 16

// Option configures a Client.
type Option func(*config)

type config struct {
	name         string
	logger       *slog.Logger
	maxMessage   int
	negotiate    bool
	awaitGreet   bool
	noOOB        bool
	eventBacklog int
	listening    func(addr string)
	tls          *tls.Config
	trace        func(dir protocol.Direction, msg []byte, aside bool)
}

// WithName names the client in its String and its log records.
func WithName(name string) Option { return func(c *config) { c.name = name } }

// WithLogger sends the client's log records to l (default slog.Default).
// At debug level every message in and out is logged as "<-- msg" and
// "--> msg".
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithTrace has the client call f with every message it sends and
// receives, greeting and negotiation included, as QEMU sees them: the
// bytes of one JSON object without line terminator. msg is valid only
// during the call; copy what you keep. f may be called from several
// goroutines at once and must not block for long. See
// protocol.Config.Trace.
func WithTrace(f func(dir protocol.Direction, msg []byte)) Option {
	return func(c *config) {
		c.trace = func(dir protocol.Direction, msg []byte, _ bool) { f(dir, msg) }
	}
}

// WithMaxMessageSize bounds one incoming message (default 10 MiB). A
// longer one ends the session with a *protocol.MessageTooLongError.
func WithMaxMessageSize(n int) Option { return func(c *config) { c.maxMessage = n } }

// WithoutNegotiation skips qmp_capabilities, for a caller that negotiates
// itself (through Raw) or talks to a server already negotiated.
func WithoutNegotiation() Option { return func(c *config) { c.negotiate = false } }

// WithoutOOB leaves the "oob" capability off even when the server offers
// it, for a client that sends no exec-oob (ExecuteOOB then fails with
// ErrOOBNotNegotiated): enabling it makes QEMU answer qmp_capabilities
// later, which a client that connects for one command feels.
func WithoutOOB() Option { return func(c *config) { c.noOOB = true } }

// WithoutGreeting skips reading the greeting, for a server that has
// already sent it to someone else. It implies WithoutNegotiation.
func WithoutGreeting() Option {
	return func(c *config) { c.awaitGreet, c.negotiate = false, false }
}

// WithEventBacklog sets how many undelivered events each Listener holds
// before it drops new ones (default DefaultEventBacklog).
func WithEventBacklog(n int) Option { return func(c *config) { c.eventBacklog = n } }

// WithListening has Accept call f once its socket is ready for QEMU to
// dial, with the address as "unix:PATH" or "tcp:HOST:PORT".
func WithListening(f func(addr string)) Option { return func(c *config) { c.listening = f } }

// Client is a QMP client. Its methods are safe for concurrent use. One
// Client runs one session at a time; after Disconnect it can connect again,
// and its Listeners carry over.
type Client struct {
	cfg   config
	proto *protocol.Protocol
	log   *slog.Logger

	// sendMu keeps each request on the session it was registered under:
	// a call holds it shared from register until its request is sent or
	// refused, and establish takes it whole before a new session goes
	// live. Ids are reused from session to session (each starts with an
	// empty pending), so a request registered under a session that then
	// ended, written on the next one, would have its reply taken by that
	// session's call with the same id, or, sent without an id, end it.
	sendMu sync.RWMutex
	// endedSessions counts the sessions that ended (see sendFailed).
	endedSessions atomic.Int64

	mu       sync.Mutex
	lastID   uint64                 // the id given last; see wire.NextID
	pending  map[uint64]chan result // by id (0: the call sent without one); nil marks a cancelled call
	waiting  int                    // the entries of pending that are not nil
	greeting *Greeting
	oob      bool

	// files is held by the call in flight that passes files, or that
	// takes some (getfd, add-fd): QEMU keeps only the descriptors of the
	// last message that brought some, and with oob reads ahead of the
	// command it runs, so a second such request sent before the first's
	// reply would replace the first's descriptors, which its getfd would
	// then take, or find none, and a getfd sent without files would take
	// another call's.
	files chan struct{}

	// inband holds a token for each in-band call that may go without an
	// id (see register) from before it registers until it returns: at most
	// maxInBand are in flight, so that, of QEMU's answers, every other one
	// can be id-less; but not while gate (under mu) has found the server
	// quicker than the callers. See maxInBand.
	inband chan struct{}
	gate   inbandGate

	listeners atomic.Pointer[[]*Listener] // copy-on-write, read by the reader
	listenMu  sync.Mutex

	in inbox // only for whoever reads the connection

	aside asideCalls // traced only
}

// inbox is what the goroutine reading the connection keeps from one
// message to the next. Only the holder of pkg/protocol's read token
// touches it: the session hook (establish), then the reader goroutine or
// a call reading its own reply (protocol.Read), in Handle and Drained.
// It has no lock of its own: the token passes between holders through a
// mutex (a session's hook runs before its reader starts, and a session's
// readers are done before the next session starts), which orders their
// accesses.
type inbox struct {
	events []Event // dispatched, not yet handed on; see Client.dispatch
	names  *names  // event names, for decodeFast
	slab   []byte  // see own
}

type result struct {
	reply reply
	err   error
}

// replyChans recycles the channels calls wait on; see roundTrip.
var replyChans = sync.Pool{New: func() any { return make(chan result, 1) }}

// NewClient returns an idle client.
func NewClient(opts ...Option) *Client {
	cfg := config{negotiate: true, awaitGreet: true, eventBacklog: DefaultEventBacklog}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.eventBacklog <= 0 {
		cfg.eventBacklog = DefaultEventBacklog
	}
	c := &Client{cfg: cfg, pending: make(map[uint64]chan result), files: make(chan struct{}, 1), inband: make(chan struct{}, maxInBand)}
	c.in.names = &names{m: make(map[string]string)}
	c.listeners.Store(new([]*Listener))
	var trace func(protocol.Direction, []byte)
	if cfg.trace != nil {
		trace = c.trace
	}
	c.proto = protocol.New(protocol.Config{
		Name:           cfg.name,
		Kind:           "QMPClient",
		Logger:         cfg.logger,
		MaxMessageSize: cfg.maxMessage,
		// Every QMP server splits its input as a JSON stream.
		Unterminated: true,
		Establish:    c.establish,
		Handle:       c.handle,
		Ended:        c.ended,
		Drained:      c.handOn,
		Yield:        c.yield,
		Listening:    cfg.listening,
		Trace:        trace,
		TLS:          cfg.tls,
	})
	c.log = c.proto.Logger()
	return c
}

// Connect dials addr (a UNIX socket path or host:port; see
// protocol.ParseAddress), reads the greeting and negotiates. ctx bounds
// all of it.
func (c *Client) Connect(ctx context.Context, addr string) error {
	start := time.Now()
	return connectTimeout(ctx, start, false, c.proto.Connect(ctx, addr))
}

// Accept listens on addr for one QEMU started with a client-mode monitor
// (-qmp unix:PATH), then greets and negotiates as Connect does.
func (c *Client) Accept(ctx context.Context, addr string) error {
	start := time.Now()
	return connectTimeout(ctx, start, true, c.proto.Accept(ctx, addr))
}

// ConnectConn runs a session over a connection the caller made.
func (c *Client) ConnectConn(ctx context.Context, conn net.Conn) error {
	start := time.Now()
	return connectTimeout(ctx, start, false, c.proto.ConnectConn(ctx, conn))
}

// Disconnect ends the session and returns why it ended: nil when a
// Disconnect ended it, or the error that did (the peer hanging up, a
// protocol error). Pending calls fail at once. The client is idle
// afterwards; calling Disconnect again returns the same cause, until the
// next session starts.
func (c *Client) Disconnect() error { return c.proto.Disconnect() }

// Runstate returns the connection's state.
func (c *Client) Runstate() protocol.Runstate { return c.proto.Runstate() }

// Watch returns a watcher that sees every state change of the
// connection, in order.
func (c *Client) Watch() *protocol.Watcher { return c.proto.Watch() }

// WaitForStateChange waits until the connection's state is other than
// lastSeen, reporting true, or until ctx ends, reporting false. See
// protocol.Protocol.WaitForStateChange.
func (c *Client) WaitForStateChange(ctx context.Context, lastSeen protocol.Runstate) bool {
	return c.proto.WaitForStateChange(ctx, lastSeen)
}

// RunstateChanged returns the connection's state and a channel closed at
// its next change, to wait for one in a select. See
// protocol.Protocol.RunstateChanged.
func (c *Client) RunstateChanged() (protocol.Runstate, <-chan struct{}) {
	return c.proto.RunstateChanged()
}

// String describes the client, e.g. <QMPClient name='vm1' runstate=RUNNING>.
func (c *Client) String() string { return c.proto.String() }

// Err returns why the last session ended: nil while it runs, after a
// Disconnect call ended it, or before the first one.
func (c *Client) Err() error { return c.proto.Err() }

// Greeting returns the greeting of the current (or last) session, nil
// before the first one or when the greeting was skipped.
func (c *Client) Greeting() *Greeting {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.greeting
}

// Execute runs a command and returns its "return" value. args is anything
// json.Marshal takes that encodes to an object, or nil for no arguments.
// A QMP error reply is an *ExecuteError; a session that ends first gives
// a *DisconnectedError at once; ctx ending first gives ctx's error, and
// the late reply is discarded.
func (c *Client) Execute(ctx context.Context, command string, args any) (json.RawMessage, error) {
	return c.execute(ctx, "execute", command, args, nil)
}

// ExecuteOOB runs a command out of band ("exec-oob"), which the server
// may answer before earlier commands. It needs the "oob" capability,
// which Connect enables whenever the server offers it.
func (c *Client) ExecuteOOB(ctx context.Context, command string, args any) (json.RawMessage, error) {
	c.mu.Lock()
	oob := c.oob
	c.mu.Unlock()
	if !oob {
		return nil, ErrOOBNotNegotiated
	}
	return c.execute(ctx, "exec-oob", command, args, nil)
}

// ExecuteWithFiles runs a command with files passed alongside it as
// SCM_RIGHTS ancillary data, as getfd and add-fd expect. It needs a UNIX
// socket connection. The caller may close its files once it returns.
//
// Calls passing files, and getfd and add-fd calls however made, run one
// at a time (see Client.files); a call given up before its reply lets
// the next one go, though QEMU may not have run it yet.
func (c *Client) ExecuteWithFiles(ctx context.Context, command string, args any, files ...*os.File) (json.RawMessage, error) {
	return c.execute(ctx, "execute", command, args, files)
}

func (c *Client) execute(ctx context.Context, verb, command string, args any, files []*os.File) (json.RawMessage, error) {
	if len(files) > 0 || wire.TakesFiles(command) {
		if err := c.takeFilesSlot(ctx); err != nil {
			return nil, err
		}
		defer func() { <-c.files }()
	}
	msg, err := encodeRequest(verb, command, args)
	if err != nil {
		return nil, err
	}
	// An out-of-band reply may overtake in-band ones: it needs its id,
	// and it does not wait for an in-band slot, which would defeat it.
	// So does an Aside call under a trace, which finds its messages by it.
	aside := c.cfg.trace != nil && isAside(ctx)
	idless := verb == "execute" && !aside
	var waited bool
	if idless {
		slot, w, err := c.takeInBandSlot(ctx)
		if err != nil {
			return nil, err
		}
		if slot {
			defer func() { <-c.inband }()
		}
		waited = w
	}
	call := c.register(idless, waited)
	if aside {
		c.aside.add(call.id)
	}
	r, err := c.roundTrip(ctx, call, appendIDEnd(msg, call.id), files)
	if err != nil {
		if aside && ctx.Err() == nil {
			c.aside.remove(call.id) // no reply is coming
		}
		return nil, err
	}
	if r.Error != nil {
		return nil, executeError(command, &r)
	}
	return r.Return, nil
}

// Raw sends msg, a JSON object built by the caller (the shell's raw
// lines), and returns the whole reply. The client routes it with an id of
// its own; the reply carries the caller's id back, or none if msg had
// none. An error reply is returned with an *ExecuteError.
func (c *Client) Raw(ctx context.Context, msg json.RawMessage) (json.RawMessage, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(msg, &fields); err != nil || fields == nil {
		return nil, fmt.Errorf("raw QMP message must be a JSON object: %s", truncate(msg, 80))
	}
	// QEMU would answer such a message with errors that have no id,
	// which end the session (see handle): refuse it here instead. As
	// the caller wrote it: decoding dropped a key given twice. The
	// client's id is four tokens more.
	if why := wire.QEMURefuses(msg, 4); why != "" {
		return nil, fmt.Errorf("raw QMP message not sent: QEMU would refuse it: %s", why)
	}
	if command := ""; json.Unmarshal(fields["execute"], &command) == nil && wire.TakesFiles(command) {
		if err := c.takeFilesSlot(ctx); err != nil {
			return nil, err
		}
		defer func() { <-c.files }()
	}
	callerID, hadID := fields["id"]
	// Always an id of the client's own: the caller's may be anything, or
	// missing, and may collide with the client's.
	call := c.register(false, false)
	fields["id"] = appendID(nil, call.id)
	out, err := json.Marshal(fields)
	if err != nil {
		c.unregister(call)
		c.sendMu.RUnlock()
		return nil, fmt.Errorf("encoding raw QMP message: %w", err)
	}
	r, err := c.roundTrip(ctx, call, out, nil)
	if err != nil {
		return nil, err
	}
	var whole map[string]json.RawMessage
	if err := json.Unmarshal(r.raw, &whole); err != nil {
		return nil, protocolErrorf("reply is not a JSON object: %s", truncate(r.raw, 80))
	}
	if hadID {
		whole["id"] = callerID
	} else {
		delete(whole, "id")
	}
	reply, err := json.Marshal(whole)
	if err != nil {
		return nil, fmt.Errorf("encoding reply: %w", err)
	}
	if r.Error != nil {
		var name string
		json.Unmarshal(fields["execute"], &name)
		return reply, executeError(name, &r)
	}
	return reply, nil
}

// An id the client gives a request is a small JSON number, N >= 1, the
// least digits that keep it apart from every other call still pending
// (see register): QEMU parses an id and writes it back in the reply, and
// "id":7 costs it far less than a string. The negotiation goes without
// one (see establish).

// appendID appends id as a JSON number.
func appendID(b []byte, id uint64) []byte { return strconv.AppendUint(b, id, 10) }

// parseID returns the N of a reply's id, or false for an id the client
// cannot have given: anything but digits without a leading zero.
func parseID(raw json.RawMessage) (uint64, bool) {
	if len(raw) == 0 || len(raw) > 19 || raw[0] == '0' {
		return 0, false
	}
	var n uint64
	for _, d := range raw {
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + uint64(d-'0')
	}
	return n, true
}

// call is a request registered in pending: its id (0 for one sent
// without an id), the channel it waits on, and whether it was the only
// call waiting when registered.
type call struct {
	id    uint64
	ch    chan result
	alone bool
}

// register enters a call in pending before its request is sent, so that a
// reply arriving at once finds it. The request goes without an id (id 0)
// when idless is allowed and no other call sent without one is pending,
// a cancelled one included: QEMU then answers it without an id, and as
// every other request in flight carries an id, the id-less reply can only
// be this one's, whatever the order of the replies. A call cancelled
// without its reply stays pending until the reply comes, so the next call
// takes an id and cannot take the stale reply. Sending fewer bytes
// matters: QEMU's parsing is most of a round trip, and an id is parsed
// and echoed.
//
// waited says the call waited for an in-band slot: see inbandGate.
//
// The caller holds sendMu shared from register until the request is sent
// or refused (roundTrip), or until it gives the call up unsent.
func (c *Client) register(idless, waited bool) call {
	k := call{ch: replyChans.Get().(chan result)}
	c.sendMu.RLock()
	c.mu.Lock()
	if waited {
		c.gate.waited(len(c.pending) == 0)
	}
	if _, busy := c.pending[0]; !idless || busy {
		k.id = wire.NextID(c.pending, &c.lastID)
	}
	c.pending[k.id] = k.ch
	c.waiting++
	k.alone = c.waiting == 1
	c.mu.Unlock()
	return k
}

// unregister takes back a call whose request was not sent, so that no
// reply is due, and reports whether other calls are waiting. (A call
// given up after sending is cancelled instead; see cancel.)
func (c *Client) unregister(k call) (others bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending[k.id] == k.ch {
		delete(c.pending, k.id)
		c.waiting--
	}
	return c.waiting > 0
}

// roundTrip sends the request of call k, then waits for its reply, the
// session's end or ctx. Its channel goes back to replyChans once a result
// has been taken from it, when nothing else can be sent on it.
func (c *Client) roundTrip(ctx context.Context, k call, msg []byte, files []*os.File) (reply, error) {
	if testHookRegistered != nil {
		testHookRegistered()
	}
	var err error
	switch {
	case files != nil:
		err = c.proto.SendFiles(ctx, msg, files...)
	case k.alone: // nothing to batch it with
		err = c.proto.SendNow(ctx, msg)
	default:
		err = c.proto.Send(ctx, msg)
	}
	c.sendMu.RUnlock()
	if err != nil {
		// Not sent, or the session is over: no reply is due.
		if others := c.unregister(k); k.alone && others {
			// A call that came after this one left reading to it.
			c.proto.Wake()
		}
		return reply{}, c.sendFailed(err)
	}

	// A lone call reads its reply itself if the reader goroutine has
	// yielded the connection (see yield): that spares a hand-off to this
	// goroutine. Concurrent calls leave reading to the reader goroutine,
	// which hands each its reply and is at it anyway.
	ch := k.ch
	if k.alone {
		c.proto.Read(ctx, func() bool { return len(ch) > 0 })
	}
	select {
	case r := <-ch:
		replyChans.Put(ch)
		return r.reply, r.err
	case <-ctx.Done():
		c.cancel(k)
		select {
		case r := <-ch: // it won the race after all
			replyChans.Put(ch)
			return r.reply, r.err
		default:
		}
		return reply{}, ctx.Err()
	}
}

// sendFailed is the error of a call whose request could not be sent. A
// send that the session's end overtook wrote nothing (a message is
// written whole or, under the writer's lock, not at all): the call is
// marked NotSent, so that no one is told QEMU may have run it. So is one
// that found its session gone and the next one not yet live (connecting,
// or still disconnecting): it was made for a session that ended first.
// A client that is not connected, or never had a session, says so (a
// StateError).
func (c *Client) sendFailed(err error) error {
	var ended *protocol.SessionEndedError
	if errors.As(err, &ended) {
		return &DisconnectedError{Cause: ended.Cause, NotSent: true}
	}
	var se *protocol.StateError
	if errors.As(err, &se) && se.State != protocol.Idle && c.endedSessions.Load() > 0 {
		return &DisconnectedError{Cause: c.proto.Err(), NotSent: true}
	}
	return err
}

// cancel marks call k cancelled: its entry stays, nil, so that its id
// (or the id-less slot) is not given to another call until the late
// reply comes, which route then drops quietly.
func (c *Client) cancel(k call) {
	c.mu.Lock()
	if ch := c.pending[k.id]; ch != nil && ch == k.ch {
		c.pending[k.id] = nil
		c.waiting--
	}
	c.mu.Unlock()
}

// encodeRequest encodes a request without its closing brace, which
// appendIDEnd adds, with the id if it has one.
func encodeRequest(verb, command string, args any) ([]byte, error) {
	b := make([]byte, 0, 64+len(command))
	b = append(b, `{"`...)
	b = append(b, verb...)
	b = append(b, `":`...)
	// QEMU answers what it cannot parse (a noncharacter in a name, which
	// Go's encoder leaves as it is; a key given twice through a
	// json.RawMessage) with an error without an id, whatever the
	// request's id: the call in flight without one would take it as its
	// own answer. Such a request is refused here, as Raw refuses one,
	// counting the id's 4 tokens. Plain names without arguments (most
	// calls) need no check.
	check := false
	if jsonSafe(command) {
		b = append(append(append(b, '"'), command...), '"')
	} else {
		q, _ := json.Marshal(command) // a string always encodes
		b = append(b, q...)
		check = true
	}
	if args != nil {
		a, err := json.Marshal(args)
		if err != nil {
			return nil, fmt.Errorf("encoding arguments of %s: %w", command, err)
		}
		if len(a) == 0 || a[0] != '{' {
			if string(a) != "null" {
				return nil, fmt.Errorf("arguments of %s must encode to a JSON object, not %s", command, truncate(a, 40))
			}
			a = nil
		}
		if a != nil {
			b = append(b, `,"arguments":`...)
			b = append(b, a...)
			check = true
		}
	}
	if check {
		if why := wire.QEMURefuses(append(b[:len(b):len(b)], '}'), 4); why != "" {
			return nil, fmt.Errorf("%s not sent: QEMU would refuse it: %s", strconv.QuoteToASCII(command), why)
		}
	}
	return b, nil
}

// appendIDEnd ends a request from encodeRequest: `,"id":N}`, or
// `}` for id 0, a request sent without an id.
func appendIDEnd(b []byte, id uint64) []byte {
	if id != 0 {
		b = append(b, `,"id":`...)
		b = appendID(b, id)
	}
	return append(b, '}')
}

// jsonSafe reports whether s can stand between JSON quotes as it is:
// printable ASCII with nothing to escape, as every QMP command name is.
func jsonSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f || s[i] == '\\' || s[i] == '"' {
			return false
		}
	}
	return true
}

// reply is an incoming message other than the greeting, decoded once by
// the reader.
type reply struct {
	QMP       json.RawMessage `json:"QMP"`
	ID        json.RawMessage `json:"id"`
	Return    json.RawMessage `json:"return"`
	Error     *errorBody      `json:"error"`
	Event     string          `json:"event"`
	Data      json.RawMessage `json:"data"`
	Timestamp *timestamp      `json:"timestamp"`
	raw       []byte
	ts        timestamp // decodeFast's timestamp, in place of Timestamp
	tsSet     bool
}

// stamp returns the timestamp that json.Unmarshal or decodeFast found.
func (r *reply) stamp() (timestamp, bool) {
	if r.Timestamp != nil {
		return *r.Timestamp, true
	}
	return r.ts, r.tsSet
}

// executeError is the error reply r to command. An error without a class
// or a description keeps what the server sent, for the message to show.
func executeError(command string, r *reply) *ExecuteError {
	e := &ExecuteError{Command: command, Class: r.Error.Class, Desc: r.Error.Desc}
	if e.Class == "" || e.Desc == "" {
		var m struct {
			Error json.RawMessage `json:"error"`
		}
		var b bytes.Buffer
		if json.Unmarshal(r.raw, &m) == nil && json.Compact(&b, m.Error) == nil {
			e.Sent = truncate(b.Bytes(), 200)
		}
	}
	return e
}

type errorBody struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

type timestamp struct {
	Seconds      int64 `json:"seconds"`
	Microseconds int64 `json:"microseconds"`
}

// handle runs for every message, in order, on the goroutine reading the
// connection (the reader goroutine, or a call reading its own reply: see
// protocol.Read): it must not block, so events are queued and replies go
// to buffered channels.
func (c *Client) handle(msg []byte) error {
	// msg is the input buffer's (see protocol.Config.Handle): of an
	// event, only the data outlives it, and only if someone listens.
	if ev := (reply{}); ev.decodeEvent(msg, c.in.names) {
		c.dispatch(&ev, true)
		return nil
	}
	msg = c.in.own(msg)
	// decodeFast without decodeEvent, which just said no.
	if fast := (reply{raw: msg}); fast.decodeMembers(msg, c.in.names) {
		return c.route(&fast) // fast stays on the stack
	}
	r := &reply{raw: msg}
	if err := json.Unmarshal(msg, r); err != nil {
		return protocolErrorf("server sent %s: %s", unreadable(err), truncate(msg, 120))
	}
	return c.route(r)
}

// unreadable says what json.Unmarshal's err found wrong with a message:
// a member of QMP's of another type ({"event": 5}), or no object at all.
func unreadable(err error) string {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) || te.Field == "" {
		return "something that is not a JSON object"
	}
	want := "an object"
	switch te.Type.Kind() {
	case reflect.String:
		want = "a string"
	case reflect.Int64:
		want = "an integer"
	}
	return fmt.Sprintf("a message whose %q is not %s (%s)", te.Field, want, te.Value)
}

// route hands a decoded message to its caller or to the listeners.
func (c *Client) route(r *reply) error {
	msg := r.raw
	switch {
	case r.Event != "":
		c.dispatch(r, false)
		return nil
	case r.Return == nil && r.Error == nil:
		return protocolErrorf("server sent a message that is neither a reply nor an event: %s", truncate(msg, 120))
	}
	var id uint64 // an id-less reply answers the call sent without one
	valid := true
	if r.ID != nil {
		id, valid = parseID(r.ID)
	}
	c.mu.Lock()
	ch, ok := c.pending[id]
	if ok && valid {
		delete(c.pending, id)
		if ch != nil {
			c.waiting--
		}
	}
	c.mu.Unlock()
	switch {
	case r.ID == nil && !ok:
		if r.Error != nil {
			// No request is out without an id, so an id-less error is
			// QEMU's answer to bytes it could not parse: the stream is
			// out of step and nothing further can be trusted.
			return protocolErrorf("server could not parse a request: %v", executeError("", r))
		}
		return protocolErrorf("server sent a reply without an id: %s", truncate(msg, 120))
	case !valid || !ok:
		// The spec: a client must ignore replies it cannot match.
		c.log.Warn("dropping a reply with an unknown id", "id", string(r.ID))
	case ch != nil:
		c.handOn() // the events before the reply reach listeners first
		ch <- result{reply: *r}
	}
	return nil
}

// own returns a copy of b, part of a message being handled, that outlives
// it. Small ones are copied into a shared chunk, one allocation for many;
// as one kept alive keeps its chunk alive too, chunks are small. For a
// flood of events, 16 KiB chunks measured 5% faster than 8 KiB ones (half
// the allocations; 32 and 64 KiB gained no more).
func (in *inbox) own(b []byte) []byte {
	const small, chunk = 512, 16 << 10
	if len(b) > small {
		return bytes.Clone(b)
	}
	if cap(in.slab)-len(in.slab) < len(b) {
		in.slab = make([]byte, 0, chunk)
	}
	n := len(in.slab)
	in.slab = append(in.slab, b...)
	return in.slab[n:len(in.slab):len(in.slab)]
}

// yield tells protocol whether the reader goroutine may leave the
// connection to callers (protocol.Config.Yield): when no call waits for a
// reply, so that the next call reads its own, and no Listener needs
// events as they come.
func (c *Client) yield() bool {
	if len(*c.listeners.Load()) > 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.waiting == 0
}

// ended runs once when a session ends: every pending call fails now.
func (c *Client) ended(cause error) {
	c.endedSessions.Add(1)
	err := &DisconnectedError{Cause: cause}
	c.mu.Lock()
	pending := c.pending
	c.pending = make(map[uint64]chan result)
	c.waiting = 0
	c.mu.Unlock()
	for _, ch := range pending {
		if ch != nil {
			ch <- result{err: err}
		}
	}
}

// Greeting is the server's QMP greeting.
type Greeting struct {
	Version      Version  `json:"version"`
	Capabilities []string `json:"capabilities"`
}

// Version is the QEMU version a greeting announces.
type Version struct {
	QEMU struct {
		Major int `json:"major"`
		Minor int `json:"minor"`
		Micro int `json:"micro"`
	} `json:"qemu"`
	Package string `json:"package"`
}

// String returns "major.minor.micro", plus the package in parentheses.
func (v Version) String() string {
	s := fmt.Sprintf("%d.%d.%d", v.QEMU.Major, v.QEMU.Minor, v.QEMU.Micro)
	if v.Package != "" {
		s += " (" + v.Package + ")"
	}
	return s
}

func parseGreeting(msg []byte) (*Greeting, error) {
	if g, ok := decodeGreeting(msg); ok {
		return g, nil
	}
	return unmarshalGreeting(msg)
}

// unmarshalGreeting is parseGreeting for any greeting, with json.Unmarshal.
func unmarshalGreeting(msg []byte) (*Greeting, error) {
	var g struct {
		QMP *struct {
			Version *struct {
				QEMU *struct {
					Major, Minor, Micro *int
				} `json:"qemu"`
				Package string `json:"package"`
			} `json:"version"`
			Capabilities *[]string `json:"capabilities"`
		} `json:"QMP"`
	}
	if err := json.Unmarshal(msg, &g); err != nil {
		return nil, fmt.Errorf("not a QMP greeting: %s", truncate(msg, 120))
	}
	switch {
	case g.QMP == nil:
		return nil, fmt.Errorf(`expected a greeting object with a "QMP" member, got %s`, truncate(msg, 120))
	case g.QMP.Version == nil || g.QMP.Version.QEMU == nil ||
		g.QMP.Version.QEMU.Major == nil || g.QMP.Version.QEMU.Minor == nil || g.QMP.Version.QEMU.Micro == nil:
		return nil, fmt.Errorf("greeting lacks version.qemu.{major,minor,micro}: %s", truncate(msg, 120))
	case g.QMP.Capabilities == nil:
		return nil, fmt.Errorf("greeting lacks a capabilities list: %s", truncate(msg, 120))
	}
	out := &Greeting{Capabilities: *g.QMP.Capabilities}
	q := g.QMP.Version.QEMU
	out.Version.QEMU.Major, out.Version.QEMU.Minor, out.Version.QEMU.Micro = *q.Major, *q.Minor, *q.Micro
	out.Version.Package = g.QMP.Version.Package
	return out, nil
}

// decodeGreeting is parseGreeting for a greeting laid out as QEMU writes
// it, {"QMP": {"version": {"qemu": {"micro": U, "minor": N, "major": J},
// "package": "P"}, "capabilities": ["C", ...]}}, matched as fixed text as
// decodeEvent matches events: a one-shot command decodes one greeting,
// and decoding it with reflection costs such a process more than the
// rest of its decoding. It returns false for anything else, which
// parseGreeting then decodes with json.Unmarshal; as the layout has each
// key once and in lower case, json.Unmarshal cannot read it differently.
func decodeGreeting(msg []byte) (*Greeting, bool) {
	const head, minor, major, pkg, caps = `{"QMP": {"version": {"qemu": {"micro": `, `, "minor": `, `, "major": `, `}, "package": `, `}, "capabilities": [`
	var g Greeting
	v := &g.Version.QEMU
	i := 0
	for _, f := range [...]struct {
		lit string
		n   *int
	}{{head, &v.Micro}, {minor, &v.Minor}, {major, &v.Major}} {
		if i = scanLiteral(msg, i, f.lit); i < 0 {
			return nil, false
		}
		var n int64
		if n, i = scanInt64(msg, i); i < 0 || int64(int(n)) != n {
			return nil, false
		}
		*f.n = int(n)
	}
	if i = scanLiteral(msg, i, pkg); i < 0 {
		return nil, false
	}
	start := i
	if i = scanPlainString(msg, i); i < 0 {
		return nil, false
	}
	g.Version.Package = string(msg[start+1 : i-1])
	if i = scanLiteral(msg, i, caps); i < 0 {
		return nil, false
	}
	g.Capabilities = []string{}
	for first := true; i < len(msg) && msg[i] != ']'; first = false {
		if !first {
			if i = scanLiteral(msg, i, ", "); i < 0 {
				return nil, false
			}
		}
		start := i
		if i = scanPlainString(msg, i); i < 0 {
			return nil, false
		}
		g.Capabilities = append(g.Capabilities, string(msg[start+1:i-1]))
	}
	if i = scanLiteral(msg, i, "]}}"); i < 0 || skipSpace(msg, i) != len(msg) {
		return nil, false
	}
	return &g, true
}

// establish is the session hook: greeting, then negotiation, before the
// reader starts.
func (c *Client) establish(ctx context.Context, s *protocol.Session) error {
	defer c.handOn() // events that came with the negotiation
	defer c.barrier()
	c.mu.Lock()
	c.greeting, c.oob = nil, false
	c.mu.Unlock()
	if !c.cfg.awaitGreet {
		return nil
	}
	var msg []byte
	for {
		m, err := s.Recv()
		if err != nil {
			if errors.Is(err, protocol.ErrClosedByPeer) {
				err = errors.New("server closed the connection without greeting")
			}
			return &GreetingError{Err: err}
		}
		// QEMU 7.2 can write an event on a new connection before its
		// greeting: one emitted as the previous client left, before
		// the monitor was set back to negotiation (a job's
		// BLOCK_JOB_READY, say). It is an event like any other.
		if ev := (reply{}); ev.decodeEvent(m, nil) {
			c.dispatch(&ev, false)
			continue
		}
		msg = m
		break
	}
	if bytes.Equal(msg, protocol.Probe) {
		return &GreetingError{Err: ErrProbed}
	}
	g, err := parseGreeting(msg)
	if err != nil {
		return &GreetingError{Err: err}
	}
	c.mu.Lock()
	c.greeting = g
	c.mu.Unlock()
	if !c.cfg.negotiate {
		return nil
	}

	// The request goes without an id: nothing else is in flight, and a
	// server in negotiation mode sends no events, so the next reply is
	// this one's. QEMU reads its monitor a byte at a time, and an id it
	// would parse and echo costs it more than the rest of the exchange.
	oob := !c.cfg.noOOB && slices.Contains(g.Capabilities, "oob")
	req := []byte(`{"execute":"qmp_capabilities"}`)
	if oob {
		req = []byte(`{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}`)
	}
	if err := s.Send(req); err != nil {
		return &NegotiationError{Err: err}
	}
	for {
		msg, err := s.Recv()
		if err != nil {
			if errors.Is(err, protocol.ErrClosedByPeer) {
				err = errors.New("server closed the connection")
			}
			return &NegotiationError{Err: err}
		}
		r := reply{raw: msg}
		if !r.decodeFast(msg, nil) {
			r = reply{raw: msg}
			if err := json.Unmarshal(msg, &r); err != nil {
				return &NegotiationError{Err: fmt.Errorf("server sent %s: %s", unreadable(err), truncate(msg, 120))}
			}
		}
		if r.Event != "" {
			c.dispatch(&r, false)
			continue
		}
		if r.Error != nil {
			return &NegotiationError{Err: executeError("qmp_capabilities", &r)}
		}
		if r.Return == nil || r.ID != nil {
			return &NegotiationError{Err: fmt.Errorf("unexpected reply to qmp_capabilities: %s", truncate(msg, 120))}
		}
		break
	}
	c.mu.Lock()
	c.oob = oob
	c.mu.Unlock()
	return nil
}

// maxInBand bounds the in-band calls in flight (see Client.inband). QEMU
// runs a monitor's in-band commands one at a time, in order, so a third
// request in flight would only wait in its queue, not run sooner; with
// two, QEMU has the next request at hand as it answers one, and as only
// one of them can go without an id, every other one does. Against QEMU
// 7.2, 8 callers sharing a client ran about 1.1x as fast as with 8
// requests in flight and an id on all but one (qmpsh-bench qemu).
const maxInBand = 2

// inbandGate lifts the bound of maxInBand while the server answers
// faster than the callers send: there a bound of two leaves the server
// waiting for the next request (8 callers on the fake server made 0.4x
// the calls they make unbounded). The sign is a call that waited for a
// slot finding, when it registers, nothing pending: the server answered
// everything while it waited. When more than one in 8 of a window of
// gateWindow such calls find that, the next gateFree calls go without a
// slot; then the bound is tried again. Against QEMU the other call is
// still running when the waiting one goes: 3 to 5 such calls in 2000
// found nothing pending, in clusters (a stall of the client lets QEMU
// answer both calls in flight, and the next two find nothing pending),
// which a window of 16 could take for a quick server; on the fake server
// 300 to 450 in 1000 do. Guarded by Client.mu.
type inbandGate struct {
	calls, idle int // of the current window
	free        int // calls left to go without a slot
	opened      int // times opened, for tests
}

const gateWindow, gateFree = 64, 4096

// waited counts a call that waited for a slot; idle says nothing was
// pending when it registered.
func (g *inbandGate) waited(idle bool) {
	g.calls++
	if idle {
		g.idle++
	}
	if g.calls < gateWindow {
		return
	}
	if 8*g.idle > g.calls {
		g.free = gateFree
		g.opened++
	}
	g.calls, g.idle = 0, 0
}

// pass reports whether a call may go without a slot, and counts it.
func (g *inbandGate) pass() bool {
	if g.free == 0 {
		return false
	}
	g.free--
	return true
}

// takeInBandSlot takes one of the maxInBand in-band slots, waiting for
// one if need be (waited), or none (slot false) while the gate is open.
// A call that gives up waiting has sent nothing. A free slot is taken
// whatever ctx says: ctx bounds waiting, as in pkg/protocol's Send, which
// writes a message that need not wait even under an ended ctx.
func (c *Client) takeInBandSlot(ctx context.Context) (slot, waited bool, err error) {
	c.mu.Lock()
	open := c.gate.pass()
	c.mu.Unlock()
	if open {
		return false, false, nil
	}
	select {
	case c.inband <- struct{}{}:
		return true, false, nil
	default:
	}
	if testHookInBandWait != nil {
		testHookInBandWait()
	}
	select {
	case c.inband <- struct{}{}:
		return true, true, nil
	case <-ctx.Done():
		return false, false, ctx.Err()
	}
}

// testHookInBandWait, when set by a test, runs when a call finds every
// in-band slot taken.
var testHookInBandWait func()

// takeFilesSlot takes the descriptor slot (Client.files) for a call, or
// gives up when ctx ends; the caller gives it back with <-c.files.
func (c *Client) takeFilesSlot(ctx context.Context) error {
	select {
	case c.files <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// testHookRegistered, when set by a test, runs between a call's register
// and its send.
var testHookRegistered func()

// testHookBarrier, when set by a test, runs as establish reaches the
// barrier of sendMu.
var testHookBarrier func()

// barrier waits for the calls registered under the previous session to
// send or give up: the new session goes live only once establish has
// returned, so none of them can reach it (see sendMu).
func (c *Client) barrier() {
	if testHookBarrier != nil {
		testHookBarrier()
	}
	c.sendMu.Lock()
	c.sendMu.Unlock()
}

// decodeFast decodes the messages a server sends all the time, replies
// and events, without reflection: it is json.Unmarshal(msg, r) for them,
// several times faster. It returns false, with r in any state, for
// whatever it does not handle with certainty (an error reply, a greeting,
// escapes in names, a key json.Unmarshal would match case-insensitively,
// a duplicate key, invalid JSON...), and the caller then decodes msg
// afresh with json.Unmarshal, so that the outcome, errors included, is
// always json.Unmarshal's. The json.RawMessage fields share msg's bytes
// instead of copying them; msg belongs to r. The timestamp goes to r.ts
// (see stamp), so that r can live on the stack. Event names are interned
// in names (see intern), if not nil.
//
// The scanning functions below take an index into msg and return the
// index after what they consumed, or -1 for anything that is not valid
// JSON or that decodeFast leaves to json.Unmarshal.
func (r *reply) decodeFast(msg []byte, names *names) bool {
	return r.decodeEvent(msg, names) || r.decodeMembers(msg, names)
}

// decodeMembers is decodeFast for any layout, member by member.
func (r *reply) decodeMembers(msg []byte, names *names) bool {
	const (
		seenEvent = 1 << iota
		seenTimestamp
		seenID
		seenReturn
		seenData
	)
	i := skipSpace(msg, 0)
	if i >= len(msg) || msg[i] != '{' {
		return false
	}
	i = skipSpace(msg, i+1)
	if i < len(msg) && msg[i] == '}' {
		return skipSpace(msg, i+1) == len(msg)
	}
	var seen uint
	for {
		start := i
		i = scanPlainString(msg, i)
		if i < 0 {
			return false
		}
		key := msg[start+1 : i-1]
		if i = skipSpace(msg, i); i >= len(msg) || msg[i] != ':' {
			return false
		}
		i = skipSpace(msg, i+1)
		start = i
		var bit uint
		switch string(key) {
		case "event":
			bit = seenEvent
			if i = scanLiteral(msg, i, "null"); i < 0 { // null leaves the field alone
				if i = scanPlainString(msg, start); i < 0 {
					return false
				}
				r.Event = intern(names, msg[start+1:i-1])
			}
		case "timestamp":
			bit = seenTimestamp
			if i = scanLiteral(msg, i, "null"); i < 0 {
				if i = scanTimestamp(msg, start, &r.ts); i < 0 {
					return false
				}
				r.tsSet = true
			}
		case "id":
			bit = seenID
			i = scanValue(msg, i)
			r.ID = rawValue(msg, start, i)
		case "return":
			bit = seenReturn
			i = scanValue(msg, i)
			r.Return = rawValue(msg, start, i)
		case "data":
			bit = seenData
			i = scanValue(msg, i)
			r.Data = rawValue(msg, start, i)
		default:
			for _, k := range [...]string{"qmp", "id", "return", "error", "event", "data", "timestamp"} {
				if len(key) == len(k) && strings.EqualFold(string(key), k) {
					return false
				}
			}
			i = scanValue(msg, i)
		}
		if i < 0 || seen&bit != 0 {
			return false
		}
		seen |= bit
		if i = skipSpace(msg, i); i >= len(msg) {
			return false
		}
		switch msg[i] {
		case ',':
			i = skipSpace(msg, i+1)
		case '}':
			return skipSpace(msg, i+1) == len(msg)
		default:
			return false
		}
	}
}

// decodeEvent is decodeFast for an event laid out as QEMU writes every
// one, {"timestamp": {"seconds": S, "microseconds": U}, "event": "NAME"}
// with or without a "data" member after the name: matching that envelope
// as fixed text spares scanning and comparing keys, and as it has each
// key once and in lower case, json.Unmarshal cannot read it differently.
// It returns false, leaving r alone, for anything else.
func (r *reply) decodeEvent(msg []byte, names *names) bool {
	const head, micro, event, data = `{"timestamp": {"seconds": `, `, "microseconds": `, `}, "event": `, `, "data": `
	i := scanLiteral(msg, 0, head)
	if i < 0 {
		return false
	}
	var ts timestamp
	if ts.Seconds, i = scanInt64(msg, i); i < 0 {
		return false
	}
	if i = scanLiteral(msg, i, micro); i < 0 {
		return false
	}
	if ts.Microseconds, i = scanInt64(msg, i); i < 0 {
		return false
	}
	if i = scanLiteral(msg, i, event); i < 0 {
		return false
	}
	start := i
	if i = scanPlainString(msg, i); i < 0 {
		return false
	}
	name := msg[start+1 : i-1]
	var d json.RawMessage
	if j := scanLiteral(msg, i, data); j >= 0 {
		if i = scanValue(msg, j); i < 0 {
			return false
		}
		d = msg[j:i:i]
	}
	if i >= len(msg) || msg[i] != '}' || skipSpace(msg, i+1) != len(msg) {
		return false
	}
	r.Event, r.Data, r.ts, r.tsSet = intern(names, name), d, ts, true
	return true
}

// names interns event names: see intern.
type names struct {
	m    map[string]string
	last string // the name interned last
}

// intern returns b as a string, without allocating if names has it, and
// adds it to names if there is room: event names are few, and a server
// making up new ones cannot make names grow without bound. Events tend to
// come in runs of one name, so the last name is tried before the map.
func intern(names *names, b []byte) string {
	if names == nil {
		return string(b)
	}
	if string(b) == names.last {
		return names.last
	}
	s, ok := names.m[string(b)]
	if !ok {
		s = string(b)
		if len(names.m) < 256 {
			names.m[s] = s
		}
	}
	names.last = s
	return s
}

// rawValue returns msg[start:end] for a value scanned by scanValue, with
// its capacity cut so that an append cannot overwrite what follows.
func rawValue(msg []byte, start, end int) json.RawMessage {
	if end < 0 {
		return nil
	}
	return msg[start:end:end]
}

// maxFastDepth bounds the nesting decodeFast validates; deeper values go
// to json.Unmarshal, which has a limit of its own.
const maxFastDepth = 64

// plainByte marks the bytes that may stand in a string unescaped
// (jsonByte&1, as for json.Unmarshal: anything from 0x20 up but '"' and
// '\\') and those that are also printable ASCII (jsonByte&2).
var jsonByte = func() (t [256]uint8) {
	for c := 0x20; c < 256; c++ {
		if c != '"' && c != '\\' {
			t[c] = 1
			if c < 0x7f {
				t[c] |= 2
			}
		}
	}
	return t
}()

func skipSpace(b []byte, i int) int {
	for i < len(b) && b[i] <= ' ' && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanLiteral consumes lit (true, false or null) if it comes next.
func scanLiteral(b []byte, i int, lit string) int {
	if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
		return i + len(lit)
	}
	return -1
}

// scanPlainString consumes a string of printable ASCII without escapes.
func scanPlainString(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	for i++; i < len(b) && jsonByte[b[i]]&2 != 0; i++ {
	}
	if i < len(b) && b[i] == '"' {
		return i + 1
	}
	return -1
}

// scanValue consumes one JSON value, checking its syntax as json.Unmarshal
// does (which, like it, lets any byte from 0x20 up stand in a string).
// b[i] is not white space. It works without recursion, with a bit per
// level of nesting saying whether it is an object.
func scanValue(b []byte, i int) int {
	var objects uint64 // bit d: level d+1 is an object
	depth := 0
value: // at a value
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '{':
		if depth == maxFastDepth {
			return -1
		}
		objects |= 1 << depth
		depth++
		if i = skipSpace(b, i+1); i < len(b) && b[i] == '}' {
			i++
			depth--
			goto after
		}
		goto member
	case '[':
		if depth == maxFastDepth {
			return -1
		}
		objects &^= 1 << depth
		depth++
		if i = skipSpace(b, i+1); i < len(b) && b[i] == ']' {
			i++
			depth--
			goto after
		}
		goto value
	case '"':
		i = scanString(b, i)
	case 't':
		i = scanLiteral(b, i, "true")
	case 'f':
		i = scanLiteral(b, i, "false")
	case 'n':
		i = scanLiteral(b, i, "null")
	default:
		i = scanNumber(b, i)
	}
	if i < 0 {
		return -1
	}
after: // after a value
	if depth == 0 {
		return i
	}
	if i = skipSpace(b, i); i >= len(b) {
		return -1
	}
	switch b[i] {
	case ',':
		i = skipSpace(b, i+1)
		if objects&(1<<(depth-1)) != 0 {
			goto member
		}
		goto value
	case '}':
		if objects&(1<<(depth-1)) == 0 {
			return -1
		}
	case ']':
		if objects&(1<<(depth-1)) != 0 {
			return -1
		}
	default:
		return -1
	}
	i++
	depth--
	goto after
member: // at a member's name
	if i = scanString(b, i); i < 0 {
		return -1
	}
	if i = skipSpace(b, i); i >= len(b) || b[i] != ':' {
		return -1
	}
	i = skipSpace(b, i+1)
	goto value
}

// ones has 1 in every byte, for the byte-parallel tests of scanString.
const ones = 0x0101010101010101

// scanString consumes a string, escapes included.
func scanString(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	for i++; i < len(b); i++ {
		// Skip 8 bytes at a time while none is special: a '"', a '\\' or
		// a control character. Each test below can also flag bytes after
		// a special one (a borrow runs upwards), never before, so the
		// lowest flag is the first special byte.
		for i+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[i:])
			q, s := x^(ones*'"'), x^(ones*'\\')
			if m := ((q-ones)&^q | (s-ones)&^s | (x-ones*0x20)&^x) & (ones * 0x80); m != 0 {
				i += bits.TrailingZeros64(m) / 8
				break
			}
			i += 8
		}
		if i >= len(b) {
			break
		}
		if jsonByte[b[i]] != 0 {
			continue
		}
		switch b[i] {
		case '"':
			return i + 1
		case '\\':
			if i++; i >= len(b) {
				return -1
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return -1
				}
				for _, h := range b[i+1 : i+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return -1
					}
				}
				i += 4
			default:
				return -1
			}
		default: // a control character
			return -1
		}
	}
	return -1
}

// scanNumber consumes a number.
func scanNumber(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

// scanTimestamp consumes {"seconds": N, "microseconds": N} into ts.
// Either member may be missing, as for json.Unmarshal.
func scanTimestamp(b []byte, i int, ts *timestamp) int {
	if i >= len(b) || b[i] != '{' {
		return -1
	}
	*ts = timestamp{}
	if i = skipSpace(b, i+1); i < len(b) && b[i] == '}' {
		return i + 1
	}
	var seen uint
	for {
		start := i
		if i = scanPlainString(b, i); i < 0 {
			return -1
		}
		key := b[start+1 : i-1]
		if i = skipSpace(b, i); i >= len(b) || b[i] != ':' {
			return -1
		}
		i = skipSpace(b, i+1)
		switch string(key) {
		case "seconds":
			if seen&1 != 0 {
				return -1
			}
			seen |= 1
			ts.Seconds, i = scanInt64(b, i)
		case "microseconds":
			if seen&2 != 0 {
				return -1
			}
			seen |= 2
			ts.Microseconds, i = scanInt64(b, i)
		default:
			return -1
		}
		if i < 0 {
			return -1
		}
		if i = skipSpace(b, i); i >= len(b) {
			return -1
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return i + 1
		default:
			return -1
		}
	}
}

// scanInt64 consumes an integer of at most 18 digits.
func scanInt64(b []byte, i int) (int64, int) {
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	start := i
	var n int64
	for i < len(b) && '0' <= b[i] && b[i] <= '9' && i-start < 18 {
		n = n*10 + int64(b[i]-'0')
		i++
	}
	switch {
	case i == start, b[start] == '0' && i > start+1:
		return 0, -1 // no digits, or a leading zero
	case i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E' || '0' <= b[i] && b[i] <= '9'):
		return 0, -1 // not an integer, or too long for this path
	}
	if neg {
		n = -n
	}
	return n, i
}
