package ga

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qmpsh/qmpsh/pkg/protocol"
	"github.com/qmpsh/qmpsh/pkg/wire"
)

// DefaultMaxMessageSize bounds one reply by default: guest-exec-status
// may carry 16 MiB of stdout and as much stderr, base64-encoded.
const DefaultMaxMessageSize = 64 << 20

// MaxRequestSize is the longest request qemu-ga takes: its JSON parser
// refuses a message of 64 MiB or more ("JSON token size limit
// exceeded"), answering with an error that has no id. The client refuses
// a longer request before sending it, with a *RequestTooLargeError.
const MaxRequestSize = 64<<20 - 1

// Option configures a Client.
type Option func(*config)

type config struct {
	name       string
	logger     *slog.Logger
	maxMessage int
	trace      func(dir protocol.Direction, msg []byte)
	callBound  time.Duration
	chunk      int
	tls        *tls.Config
}

// WithName names the client in its String and its log records.
func WithName(name string) Option { return func(c *config) { c.name = name } }

// WithLogger sends the client's log records to l (default slog.Default).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithTrace has the client call f with every message sent and received,
// the synchronisation included (see protocol.Config.Trace). msg is valid
// only during the call.
func WithTrace(f func(dir protocol.Direction, msg []byte)) Option {
	return func(c *config) { c.trace = f }
}

// WithCallTimeout bounds each request's wait for its reply by d, on top
// of the caller's context: how a long copy or a long-running program
// still notices at once an agent that stopped answering.
func WithCallTimeout(d time.Duration) Option { return func(c *config) { c.callBound = d } }

// WithChunkSize sets how many bytes ReadFile and WriteFile move per
// request (default DefaultChunkSize).
func WithChunkSize(n int) Option { return func(c *config) { c.chunk = n } }

// WithTLS sets the TLS configuration for "tls:HOST:PORT" addresses: an
// agent whose channel QEMU serves on a TCP chardev with tls-creds. Other
// addresses never use it.
func WithTLS(cfg *tls.Config) Option { return func(c *config) { c.tls = cfg } }

// WithMaxMessageSize bounds one incoming message (default
// DefaultMaxMessageSize).
func WithMaxMessageSize(n int) Option { return func(c *config) { c.maxMessage = n } }

// noReplyDefault are the commands that send no reply on success, as
// qemu-ga 7.2 lists them in guest-info; Info replaces the list with the
// agent's own.
var noReplyDefault = []string{"guest-shutdown", "guest-suspend-disk", "guest-suspend-ram", "guest-suspend-hybrid"}

// Client is a guest agent client.
type Client struct {
	proto *protocol.Protocol
	log   *slog.Logger

	nextID atomic.Uint64

	mu      sync.Mutex
	pending map[uint64]*pendingCall // calls waiting, by request id
	noReply map[string]bool         // commands that never reply on success

	callBound time.Duration
	chunk     int

	syncMu sync.Mutex  // one resynchronisation at a time
	stale  atomic.Bool // a call went unanswered: synchronise before the next
}

type reply struct {
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	ID  json.RawMessage `json:"id"`
	raw []byte          // the whole message, for Raw
	err error           // the call's failure other than an error reply
}

// NewClient returns an unconnected client.
func NewClient(opts ...Option) *Client {
	cfg := config{maxMessage: DefaultMaxMessageSize, chunk: DefaultChunkSize}
	for _, o := range opts {
		o(&cfg)
	}
	c := &Client{pending: make(map[uint64]*pendingCall), noReply: make(map[string]bool),
		callBound: cfg.callBound, chunk: cfg.chunk}
	for _, n := range noReplyDefault {
		c.noReply[n] = true
	}
	c.proto = protocol.New(protocol.Config{
		Name:           cfg.name,
		Kind:           "GAClient",
		Logger:         cfg.logger,
		MaxMessageSize: cfg.maxMessage,
		Establish:      c.establish,
		Handle:         c.handle,
		Ended:          c.ended,
		Trace:          cfg.trace,
		TLS:            cfg.tls,
	})
	c.log = c.proto.Logger()
	return c
}

// Connect connects to the agent at addr and synchronises with it. addr
// is a UNIX socket path, "unix:PATH", "tcp:HOST:PORT" or HOST:PORT,
// "tls:HOST:PORT" (see WithTLS; protocol.ParseAddress), or
// "vsock:CID:PORT". An agent that does not
// answer the synchronisation before ctx's deadline is a *NoAnswerError.
func (c *Client) Connect(ctx context.Context, addr string) error {
	if rest, ok := strings.CutPrefix(addr, "vsock:"); ok {
		cid, port, err := parseVsock(rest)
		if err != nil {
			return err
		}
		conn, err := dialVsock(ctx, cid, port)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &protocol.ConnectError{Message: "failed to establish connection", Err: err}
		}
		return c.ConnectConn(ctx, conn)
	}
	return c.noAnswer(ctx, time.Now(), "to guest-sync-delimited", c.proto.Connect(ctx, addr))
}

// ConnectConn synchronises with an agent over conn, which the client
// owns from then on.
func (c *Client) ConnectConn(ctx context.Context, conn net.Conn) error {
	return c.noAnswer(ctx, time.Now(), "to guest-sync-delimited", c.proto.ConnectConn(ctx, conn))
}

// Disconnect ends the session; calls waiting fail with a
// *DisconnectedError.
func (c *Client) Disconnect() error { return c.proto.Disconnect() }

// Runstate returns the connection's runstate.
func (c *Client) Runstate() protocol.Runstate { return c.proto.Runstate() }

// RunstateChanged returns the runstate and a channel closed at the next
// transition (see protocol.Protocol.RunstateChanged).
func (c *Client) RunstateChanged() (protocol.Runstate, <-chan struct{}) {
	return c.proto.RunstateChanged()
}

// Err returns why the last session ended (nil while it runs).
func (c *Client) Err() error { return c.proto.Err() }

// String describes the client and its runstate.
func (c *Client) String() string { return c.proto.String() }

// noAnswer turns a deadline that ended a call begun at start into a
// *NoAnswerError; other errors are returned as they are.
func (c *Client) noAnswer(ctx context.Context, start time.Time, doing string, err error) error {
	var na *NoAnswerError
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &na) {
		return err
	}
	var after time.Duration
	if dl, ok := ctx.Deadline(); ok {
		// The client's own bound on a call is known exactly (a bound
		// under a millisecond would round up to 1ms); a caller's
		// deadline was set a moment before start.
		if after = dl.Sub(start); after != c.callBound {
			after = wire.RoundBound(after)
		}
	}
	return &NoAnswerError{Doing: doing, After: after, Err: err}
}

// randomID is a sync id no earlier client can have used: a reply to an
// earlier client's sync, still in the channel, must not be taken for
// ours. JSON numbers are safe in both directions below 2^53.
func randomID() int64 {
	var b [8]byte
	crand.Read(b[:])
	return int64(binary.LittleEndian.Uint64(b[:]) >> 11)
}

// syncRequest is guest-sync-delimited with id syncID, preceded by the
// 0xFF byte that makes the agent drop whatever it had half-parsed.
func syncRequest(syncID int64, reqID uint64) []byte {
	msg, _ := encodeRequest("guest-sync-delimited", map[string]int64{"id": syncID}, reqID)
	return append([]byte{0xff}, msg...)
}

// establish synchronises: everything the agent sends before the 0xFF
// sentinel and the return value of our sync is stale (an earlier client's
// replies, the error the 0xFF itself provokes) and is dropped.
func (c *Client) establish(ctx context.Context, s *protocol.Session) error {
	syncID := randomID()
	if err := s.Send(syncRequest(syncID, c.nextID.Add(1))); err != nil {
		return err
	}
	for {
		msg, err := s.Recv()
		if err != nil {
			return err
		}
		i := bytes.LastIndexByte(msg, 0xff)
		if i < 0 {
			// Stale output of the agent's, or a QMP monitor's greeting:
			// no agent sends one, and a monitor would never answer.
			var g struct{ QMP json.RawMessage }
			if json.Unmarshal(msg, &g) == nil && g.QMP != nil {
				return ErrMonitor
			}
			continue
		}
		var r struct{ Return json.RawMessage }
		if json.Unmarshal(msg[i+1:], &r) == nil && string(r.Return) == strconv.FormatInt(syncID, 10) {
			c.stale.Store(false)
			return nil
		}
	}
}

// handle routes a reply to its call. Anything before a 0xFF sentinel is
// stale output and is dropped with it.
func (c *Client) handle(msg []byte) error {
	// 0xFF is never in JSON text: IndexByte finds it fast, when at all.
	if bytes.IndexByte(msg, 0xff) >= 0 {
		msg = msg[bytes.LastIndexByte(msg, 0xff)+1:]
	}
	// The common case, {"return": VALUE, "id": N} as qemu-ga writes it,
	// without decoding VALUE, which may be megabytes of base64 that the
	// caller decodes anyway (decode checks what it takes: decodeRead).
	// Any other value is checked, and the message decoded whole if it is
	// not the JSON it looks like.
	if ret, id, ok := fastReply(msg); ok {
		pc := c.take(id)
		if pc == nil {
			c.log.Debug("dropping a reply nobody waits for", "msg", truncate(msg))
			return nil
		}
		var r reply
		switch {
		case pc.decode != nil:
			pc.decode(ret)
			r.Return = decoded
		case json.Valid(ret):
			r.Return = bytes.Clone(ret)
		default:
			if err := json.Unmarshal(msg, &r); err != nil {
				r.err = &ProtocolError{Msg: fmt.Sprintf("the reply to %s is not JSON (%v): %s", pc.command, err, truncate(msg))}
			}
		}
		if pc.wantRaw {
			r.raw = bytes.Clone(msg)
		}
		pc.ch <- r
		return nil
	}
	var r reply
	if err := json.Unmarshal(msg, &r); err != nil {
		c.log.Warn("ignoring a message from the agent that is not JSON", "msg", truncate(msg))
		return nil
	}
	id, err := strconv.ParseUint(string(r.ID), 10, 64)
	if err != nil {
		// The agent's answer to a 0xFF, or to a request it could not
		// parse, has no id. An error while one request waits (other than
		// a sync, whose own 0xFF provokes one) is that request's: the
		// agent refused it unparsed ("JSON token size limit exceeded"),
		// and no reply with its id will come.
		if pc := c.takeOnly(); r.Error != nil && pc != nil {
			c.log.Debug("taking an error without id as the reply to the one request waiting",
				"command", pc.command, "msg", truncate(msg))
			// What the agent read after the point it gave up on is
			// unknown: synchronise before the next request.
			c.stale.Store(true)
			r.raw = bytes.Clone(msg)
			pc.ch <- r
			return nil
		}
		c.log.Debug("dropping a message without a known id", "msg", truncate(msg))
		return nil
	}
	pc := c.take(id)
	if pc == nil {
		c.log.Debug("dropping a reply nobody waits for", "msg", truncate(msg))
		return nil
	}
	r.raw = bytes.Clone(msg)
	pc.ch <- r
	return nil
}

// takeOnly removes and returns the one call waiting, if exactly one is
// and it is not a synchronisation; otherwise it returns nil.
func (c *Client) takeOnly() *pendingCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) != 1 {
		return nil
	}
	for id, pc := range c.pending {
		if pc.command == "guest-sync-delimited" {
			return nil
		}
		delete(c.pending, id)
		return pc
	}
	return nil
}

// take removes and returns the call waiting for reply id, nil if none.
func (c *Client) take(id uint64) *pendingCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	pc := c.pending[id]
	delete(c.pending, id)
	return pc
}

// fastReply recognises {"return": VALUE, "id": N} and returns VALUE
// (part of msg) and N. The id must close the message: a VALUE that ends
// in something like an id is followed by the message's own brace.
func fastReply(msg []byte) (ret []byte, id uint64, ok bool) {
	const prefix, idKey = `{"return": `, `, "id": `
	end := len(msg) - 1
	if !bytes.HasPrefix(msg, []byte(prefix)) || end < len(prefix)+len(idKey) || msg[end] != '}' {
		return nil, 0, false
	}
	i := end
	for i > 0 && msg[i-1] >= '0' && msg[i-1] <= '9' {
		i--
	}
	if i == end || !bytes.HasSuffix(msg[:i], []byte(idKey)) {
		return nil, 0, false
	}
	id, err := strconv.ParseUint(string(msg[i:end]), 10, 64)
	ret = msg[len(prefix) : i-len(idKey)]
	if err != nil || len(ret) == 0 {
		return nil, 0, false
	}
	return ret, id, true
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return strconv.Quote(string(b[:200])) + "..."
	}
	return strconv.Quote(string(b))
}

// ended fails every waiting call at once.
func (c *Client) ended(cause error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, pc := range c.pending {
		pc.ch <- reply{err: &DisconnectedError{Cause: cause}}
		delete(c.pending, id)
	}
}

// preEncoded is arguments the client has encoded itself, a JSON object,
// for the file copy's large requests.
type preEncoded []byte

// encodeRequest encodes {"execute": command, "arguments": args, "id": id}.
// args, when not nil, must encode as a JSON object.
func encodeRequest(command string, args any, id uint64) ([]byte, error) {
	name, err := json.Marshal(command)
	if err != nil {
		return nil, err
	}
	if pre, ok := args.(preEncoded); ok {
		b := make([]byte, 0, len(name)+len(pre)+64)
		b = append(append(append(b, `{"execute":`...), name...), `,"arguments":`...)
		b = append(append(b, pre...), `,"id":`...)
		b = strconv.AppendUint(b, id, 10)
		return append(b, '}'), nil
	}
	b := append([]byte(`{"execute":`), name...)
	if args != nil {
		a, err := json.Marshal(args)
		if err != nil {
			return nil, fmt.Errorf("encoding the arguments of %s: %w", command, err)
		}
		if string(a) != "null" {
			if len(a) == 0 || a[0] != '{' {
				return nil, fmt.Errorf("the arguments of %s must be a JSON object, not %s", command, a)
			}
			b = append(append(b, `,"arguments":`...), a...)
		}
	}
	b = append(b, `,"id":`...)
	b = strconv.AppendUint(b, id, 10)
	return append(b, '}'), nil
}

// checkSize refuses msg, a request for command, if the agent would.
func checkSize(command string, msg []byte) error {
	if len(msg) > MaxRequestSize {
		return &RequestTooLargeError{Command: command, Size: len(msg)}
	}
	return nil
}

// Exec runs command with args (nil, or a value encoding/json encodes as
// an object) and returns its return value. An error reply is a
// *wire.ExecuteError. A command that never replies on success (see
// NoReply) returns nil, nil once it is sent: a guest shutting down or
// suspending answers nothing.
func (c *Client) Exec(ctx context.Context, command string, args any) (json.RawMessage, error) {
	if c.NoReply(command) {
		if err := c.resync(ctx); err != nil {
			return nil, err
		}
		msg, err := encodeRequest(command, args, c.nextID.Add(1))
		if err != nil {
			return nil, err
		}
		if err := checkSize(command, msg); err != nil {
			return nil, err
		}
		return nil, c.sendOnly(ctx, msg)
	}
	pc, err := c.start(ctx, command, args)
	if err != nil {
		return nil, err
	}
	return pc.result(ctx)
}

// start sends command, which must be one that replies, and returns at
// once: several requests may be in flight, answered in order.
func (c *Client) start(ctx context.Context, command string, args any) (*pendingCall, error) {
	return c.startDecoded(ctx, command, args, nil)
}

// startDecoded is start with a decode hook for the return value (see
// pendingCall.decode).
func (c *Client) startDecoded(ctx context.Context, command string, args any, decode func([]byte)) (*pendingCall, error) {
	if err := c.resync(ctx); err != nil {
		return nil, err
	}
	id := c.nextID.Add(1)
	msg, err := encodeRequest(command, args, id)
	if err != nil {
		return nil, err
	}
	if err := checkSize(command, msg); err != nil {
		return nil, err
	}
	return c.begin(ctx, &pendingCall{command: command, id: id, decode: decode}, msg)
}

// result waits for pc's reply and returns its return value; an error
// reply is a *wire.ExecuteError.
func (pc *pendingCall) result(ctx context.Context) (json.RawMessage, error) {
	r, err := pc.await(ctx)
	if err != nil {
		return nil, err
	}
	return pc.value(r)
}

// value returns reply r's return value; an error reply is a
// *wire.ExecuteError.
func (pc *pendingCall) value(r reply) (json.RawMessage, error) {
	if r.Error != nil {
		return nil, &wire.ExecuteError{Command: pc.command, Class: r.Error.Class, Desc: r.Error.Desc}
	}
	if r.Return == nil {
		return nil, &ProtocolError{Msg: fmt.Sprintf("reply to %s has neither return nor error: %s", pc.command, truncate(r.raw))}
	}
	return r.Return, nil
}

// Raw sends msg, a JSON object with "execute" (and any "arguments"), and
// returns the agent's whole reply; its "id" is the client's own. An error
// reply is also a *wire.ExecuteError.
func (c *Client) Raw(ctx context.Context, msg json.RawMessage) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(msg, &m); err != nil {
		return nil, fmt.Errorf("raw message: %w", err)
	}
	// qemu-ga parses as QEMU does: what QEMU's parser refuses would be
	// answered without an id, and a key given twice is dropped by the
	// decoding above. The client's id is four tokens more.
	if why := wire.QEMURefuses(msg, 4); why != "" {
		return nil, fmt.Errorf("raw message not sent: the agent would refuse it: %s", why)
	}
	var command string
	if err := json.Unmarshal(m["execute"], &command); err != nil || command == "" {
		return nil, errors.New(`raw message: needs "execute" with a command name`)
	}
	if err := c.resync(ctx); err != nil {
		return nil, err
	}
	id := c.nextID.Add(1)
	userID, hadID := m["id"]
	m["id"] = json.RawMessage(strconv.FormatUint(id, 10))
	out, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if err := checkSize(command, out); err != nil {
		return nil, err
	}
	if c.NoReply(command) {
		return nil, c.sendOnly(ctx, out)
	}
	r, err := c.roundTrip(ctx, command, id, out, true)
	if err != nil {
		return nil, err
	}
	// The reply carries the caller's id, or none, not the client's.
	var rm map[string]json.RawMessage
	if json.Unmarshal(r.raw, &rm) == nil {
		delete(rm, "id")
		if hadID {
			rm["id"] = userID
		}
		if b, err := json.Marshal(rm); err == nil {
			r.raw = b
		}
	}
	if r.Error != nil {
		return r.raw, &wire.ExecuteError{Class: r.Error.Class, Desc: r.Error.Desc}
	}
	return r.raw, nil
}

// sendOnly sends a request no reply will answer. An error reply (a bad
// argument) may still come; with nobody waiting, it is logged.
func (c *Client) sendOnly(ctx context.Context, msg []byte) error {
	if err := c.proto.SendNow(ctx, msg); err != nil {
		return c.sendError(err)
	}
	return nil
}

func (c *Client) sendError(err error) error {
	var se *protocol.SessionEndedError
	var ste *protocol.StateError
	if errors.As(err, &se) || errors.As(err, &ste) {
		// Refused before anything was written: the agent did not run it.
		return &DisconnectedError{Cause: c.proto.Err(), NotSent: true}
	}
	return err
}

// roundTrip sends msg, request id, and waits for its reply.
func (c *Client) roundTrip(ctx context.Context, command string, id uint64, msg []byte, wantRaw bool) (reply, error) {
	pc, err := c.begin(ctx, &pendingCall{command: command, id: id, wantRaw: wantRaw}, msg)
	if err != nil {
		return reply{}, err
	}
	return pc.await(ctx)
}

// pendingCall is a request sent and not yet answered.
type pendingCall struct {
	c       *Client
	id      uint64
	command string
	start   time.Time
	ch      chan reply
	wantRaw bool // the caller wants the whole message (Raw)
	// decode, if set, is given the return value of a reply in the
	// agent's usual layout on the reader goroutine, straight from the
	// read buffer, which it must not keep; the caller then gets the reply
	// without the value (Return is decoded). It spares copying what may be
	// megabytes of base64 that the caller would only decode. A reply in
	// another layout comes with its value as usual.
	decode func(ret []byte)
}

// decoded stands for a return value that pendingCall.decode took.
var decoded = json.RawMessage(`"decoded"`)

// begin registers pc, the call of request msg, then sends msg. pc has
// its command and id set, and what else the caller wants of it.
func (c *Client) begin(ctx context.Context, pc *pendingCall, msg []byte) (*pendingCall, error) {
	pc.c, pc.start, pc.ch = c, time.Now(), make(chan reply, 1)
	c.mu.Lock()
	c.pending[pc.id] = pc
	c.mu.Unlock()
	if err := c.proto.SendNow(ctx, msg); err != nil {
		pc.forget()
		return nil, c.sendError(err)
	}
	return pc, nil
}

// sendUnawaited writes a request without synchronising first and without
// waiting for its reply, which is dropped when it comes: the last resort
// of closeAnyway.
func (c *Client) sendUnawaited(ctx context.Context, command string, args any) error {
	msg, err := encodeRequest(command, args, c.nextID.Add(1))
	if err != nil {
		return err
	}
	return c.sendError(c.proto.SendNow(ctx, msg))
}

// forget stops waiting for the reply, which will be dropped.
func (pc *pendingCall) forget() {
	pc.c.mu.Lock()
	delete(pc.c.pending, pc.id)
	pc.c.mu.Unlock()
}

// await waits for the reply. A call that ctx (or the client's bound on
// each call) ends leaves the client to synchronise before the next call:
// its reply may yet come, or the agent may have restarted.
func (pc *pendingCall) await(ctx context.Context) (reply, error) {
	r, _, err := pc.awaitGrace(ctx, 0)
	return r, err
}

// awaitGrace is await for a call that makes something in the guest the
// caller must undo if it gives up (an open file's handle): when ctx, or
// the call's bound, ends before the reply, it waits up to grace longer
// for the reply. err is then what await returns; got says whether a
// reply came all the same, for the caller to undo.
func (pc *pendingCall) awaitGrace(ctx context.Context, grace time.Duration) (r reply, got bool, err error) {
	c := pc.c
	if c.callBound > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, pc.start.Add(c.callBound))
		defer cancel()
	}
	select {
	case r = <-pc.ch:
		if grace == 0 || ctx.Err() == nil {
			return r, r.err == nil, r.err
		}
		// The context ended as the reply came: with a grace, the caller
		// is told of the end whichever select saw first, and gets the
		// reply to undo what it did.
		return r, r.err == nil, c.noAnswer(ctx, pc.start, "to "+pc.command, ctx.Err())
	case <-ctx.Done():
	}
	err = c.noAnswer(ctx, pc.start, "to "+pc.command, ctx.Err())
	if grace > 0 {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case r = <-pc.ch:
			return r, r.err == nil, err
		case <-t.C:
		}
	}
	pc.forget()
	c.stale.Store(true)
	return reply{}, false, err
}

// resync synchronises again if a call went unanswered: the channel may
// hold that call's late reply, or a restarted agent half a request.
func (c *Client) resync(ctx context.Context) error {
	if !c.stale.Load() {
		return nil
	}
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	if !c.stale.Load() {
		return nil
	}
	syncID := randomID()
	id := c.nextID.Add(1)
	r, err := c.roundTrip(ctx, "guest-sync-delimited", id, syncRequest(syncID, id), false)
	if err != nil {
		return err
	}
	if string(r.Return) != strconv.FormatInt(syncID, 10) {
		return &ProtocolError{Msg: "guest-sync-delimited answered " + truncate(r.raw)}
	}
	c.stale.Store(false)
	return nil
}

// NoReply reports whether command sends no reply on success.
func (c *Client) NoReply(command string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.noReply[command]
}

// Info is guest-info's return value.
type Info struct {
	Version  string        `json:"version"`
	Commands []CommandInfo `json:"supported_commands"`
}

// CommandInfo describes one command the agent has.
type CommandInfo struct {
	Name            string `json:"name"`
	Enabled         bool   `json:"enabled"`
	SuccessResponse bool   `json:"success-response"`
}

// Info asks the agent for its version and commands, and from then on
// takes the commands without success-response as those Exec sends
// without waiting.
func (c *Client) Info(ctx context.Context) (*Info, error) {
	ret, err := c.Exec(ctx, "guest-info", nil)
	if err != nil {
		return nil, err
	}
	var info Info
	if err := json.Unmarshal(ret, &info); err != nil {
		return nil, &ProtocolError{Msg: "guest-info: " + err.Error()}
	}
	if len(info.Commands) == 0 {
		return &info, nil // nothing learnt: keep what we knew
	}
	c.mu.Lock()
	clear(c.noReply)
	for _, cmd := range info.Commands {
		if !cmd.SuccessResponse {
			c.noReply[cmd.Name] = true
		}
	}
	c.mu.Unlock()
	return &info, nil
}
