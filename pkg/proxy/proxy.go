package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/qmpsh/qmpsh/pkg/protocol"
	"github.com/qmpsh/qmpsh/pkg/wire"
)

// Defaults for Config.
const (
	DefaultQueueLen       = 1024
	DefaultQueueBytes     = 64 << 20
	DefaultConnectTimeout = 10 * time.Second
	DefaultMinDelay       = 100 * time.Millisecond
	DefaultMaxDelay       = 5 * time.Second
)

// Config configures a Proxy.
type Config struct {
	// Upstream is QEMU's QMP address (see protocol.ParseAddress).
	Upstream string
	// Listen are the addresses clients connect to. A UNIX socket is
	// created mode 0600 and removed when Run returns.
	Listen []string
	// TLS is for "tls:HOST:PORT" addresses: upstream, the client side
	// (RootCAs, a client certificate); listening, the server side
	// (Certificates, and ClientAuth: set it to
	// tls.RequireAndVerifyClientCert with ClientCAs, or anyone who can
	// reach the port gets the VM).
	TLS *tls.Config
	// Policy decides which commands reach QEMU.
	Policy Policy
	// Reconnect keeps the proxy listening when QEMU goes away (or is not
	// there yet), redialling with backoff from MinDelay to MaxDelay.
	Reconnect          bool
	MinDelay, MaxDelay time.Duration
	// ConnectTimeout bounds one attempt to connect to QEMU and negotiate.
	ConnectTimeout time.Duration
	// QueueLen bounds the messages waiting for one client; a client that
	// falls that far behind is disconnected. Default DefaultQueueLen.
	QueueLen int
	// QueueBytes bounds their length together, for a client that asks
	// for long replies and reads none; one message alone may be longer
	// (a reply of tens of MiB the client asked for, up to
	// MaxUpstreamMessageSize). Default DefaultQueueBytes.
	QueueBytes int64
	// MaxMessageSize bounds one message from a client; a client that
	// sends a longer one is disconnected. Default
	// protocol.DefaultMaxMessageSize. QEMU's are bounded by
	// MaxUpstreamMessageSize.
	MaxMessageSize int
	// Logger receives the proxy's log lines (clients coming and going at
	// Info, a client closed for falling behind at Warn). Default
	// slog.Default().
	Logger *slog.Logger
	// Trace, if set, sees every message between the proxy and its
	// peers, labelled with who: "qemu" or a client's name. Sent is
	// towards that peer, Received from it. msg is valid only during the
	// call.
	Trace func(who string, dir protocol.Direction, msg []byte)
	// Left, if set, is called with a client's name once it has left:
	// Trace sees nothing more of it (a tracer that keeps state per
	// peer, the redactor's awaited replies, drops it here).
	Left func(who string)
	// Listening, if set, is called once every listener is up, with the
	// addresses in "unix:PATH" or "tcp:HOST:PORT" form (port 0 resolved).
	Listening func(addrs []string)
	// Serving, if set, is called each time the proxy has connected to
	// QEMU and serves clients, and with false when it stops.
	Serving func(bool)
}

// UpstreamError is why Run gave up on QEMU: it could not connect, or
// QEMU went away (Lost).
type UpstreamError struct {
	Addr string
	Lost bool
	Err  error
}

func (e *UpstreamError) Error() string {
	if e.Lost {
		if e.Err == nil {
			return "QEMU at " + e.Addr + " went away"
		}
		return "QEMU at " + e.Addr + " went away: " + e.Err.Error()
	}
	return "cannot connect to QEMU at " + e.Addr + ": " + e.Err.Error()
}

func (e *UpstreamError) Unwrap() error { return e.Err }

// GreetingError is a connection to QEMU on which no greeting came: QEMU
// closed it, or the connect's deadline passed while QEMU served another
// client (its monitor serves one at a time).
type GreetingError struct{ Err error }

func (e *GreetingError) Error() string { return "waiting for the greeting: " + e.Err.Error() }

func (e *GreetingError) Unwrap() error { return e.Err }

// Proxy serves many QMP clients over one connection to QEMU.
type Proxy struct {
	cfg Config
	log *slog.Logger
	up  *protocol.Protocol

	// sendMu keeps each request on the connection to QEMU it was
	// registered under: forward holds it shared from registering a call
	// until its request is sent or refused, and establish takes it whole
	// before a new connection goes live. Upstream ids are reused from one
	// connection to the next (and one request goes without), so a request
	// registered before QEMU went away, written on the next connection,
	// would have its reply taken by another client's call.
	sendMu sync.RWMutex

	mu         sync.Mutex
	serving    bool
	servingCh  chan struct{}        // closed when serving starts; replaced when it stops
	greeting   []byte               // QEMU's, as it sent it; nil until connected
	offered    []string             // the capabilities QEMU offered
	clients    map[*client]struct{} // admitted and not yet gone
	pending    map[uint64]*call     // by the proxy's upstream id; 0: the call sent without one
	lastID     uint64               // the id given last; see wire.NextID
	nextClient int
	// filesCall is the call in flight that carried descriptors, nil
	// when none; filesFree is closed when it ends. QEMU keeps only the
	// descriptors of the last message that brought some, and reads
	// ahead of the command it runs (with oob, up to 8 requests): a
	// second request with descriptors sent before the first's reply
	// would replace the first's, which getfd would then take, or find
	// none. So one such request is in flight at a time, whoever sent it.
	filesCall *call
	filesFree chan struct{}
	lostCh    chan error // the current upstream session's end

	wg sync.WaitGroup // accept loops and clients
}

// call is a command on its way to QEMU and back.
type call struct {
	c     *client
	id    json.RawMessage // the client's, verbatim; nil: none
	after [][]byte        // the client's replies the proxy made meanwhile, to follow this one
}

// MaxUpstreamMessageSize bounds one message from QEMU. A message past it
// ends the connection to QEMU, and with it every client's session, so it
// is far above a client's bound (Config.MaxMessageSize): a client asking
// for a reply longer than its own bound (human-monitor-command's output
// can be tens of MiB) should cost that client alone.
const MaxUpstreamMessageSize = 256 << 20

// New returns a proxy for cfg; Run runs it.
func New(cfg Config) (*Proxy, error) {
	if err := cfg.Policy.Check(); err != nil {
		return nil, err
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = DefaultQueueLen
	}
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = DefaultQueueBytes
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = protocol.DefaultMaxMessageSize
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.MinDelay <= 0 {
		cfg.MinDelay = DefaultMinDelay
	}
	if cfg.MaxDelay < cfg.MinDelay {
		cfg.MaxDelay = max(DefaultMaxDelay, cfg.MinDelay)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	p := &Proxy{
		cfg:       cfg,
		log:       log,
		servingCh: make(chan struct{}),
		clients:   make(map[*client]struct{}),
		pending:   make(map[uint64]*call),
	}
	pc := protocol.Config{
		Name:           "upstream",
		MaxMessageSize: MaxUpstreamMessageSize,
		Logger:         log,
		Establish:      p.establish,
		Handle:         p.handle,
		Ended:          p.ended,
		TLS:            cfg.TLS,
	}
	if cfg.Trace != nil {
		pc.Trace = func(dir protocol.Direction, msg []byte) { cfg.Trace("qemu", dir, msg) }
	}
	p.up = protocol.New(pc)
	return p, nil
}

// Run listens, connects to QEMU and serves clients until ctx ends (nil)
// or QEMU goes away without Reconnect (an *UpstreamError). Either way,
// every client's connection is closed, the listening sockets are removed
// and every goroutine it started has ended when it returns. QEMU itself
// is left running. Run may be called once.
func (p *Proxy) Run(ctx context.Context) error {
	lns, addrs, err := listenAll(ctx, p.cfg.Listen, p.cfg.TLS)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	for i, ln := range lns {
		p.wg.Add(1)
		go p.acceptLoop(ctx, ln, addrs[i])
	}
	defer func() {
		cancel()
		for i, ln := range lns {
			ln.Close()
			if a, _ := protocol.ParseAddress(addrs[i]); a.Network == "unix" {
				os.Remove(a.Addr)
			}
		}
		p.stopServing()
		p.up.Disconnect()
		p.wg.Wait()
	}()
	if p.cfg.Listening != nil {
		p.cfg.Listening(addrs)
	}

	delay := p.cfg.MinDelay
	outage := false // QEMU went away, or was not there: say when it is back
	for {
		lost := make(chan error, 1)
		p.mu.Lock()
		p.lostCh = lost
		p.mu.Unlock()
		cctx, ccancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
		err := p.up.Connect(cctx, p.cfg.Upstream)
		ccancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if !p.cfg.Reconnect {
				return &UpstreamError{Addr: p.cfg.Upstream, Err: err}
			}
			// Said once per outage; every attempt with -v.
			level := slog.LevelInfo
			if delay == p.cfg.MinDelay {
				level = slog.LevelWarn
			}
			p.log.Log(ctx, level, "cannot connect to QEMU; retrying", "addr", p.cfg.Upstream, "err", err, "in", delay)
			outage = true
			if !sleep(ctx, delay) {
				return nil
			}
			delay = min(2*delay, p.cfg.MaxDelay)
			continue
		}
		delay = p.cfg.MinDelay
		p.startServing()
		if outage {
			p.log.Warn("reconnected to QEMU; serving again", "addr", p.cfg.Upstream)
		} else {
			p.log.Info("serving QEMU", "addr", p.cfg.Upstream)
		}
		outage = false
		var cause error
		select {
		case <-ctx.Done():
		case cause = <-lost:
		}
		p.stopServing()
		if derr := p.up.Disconnect(); cause == nil {
			cause = derr
		}
		if ctx.Err() != nil {
			return nil
		}
		if !p.cfg.Reconnect {
			return &UpstreamError{Addr: p.cfg.Upstream, Lost: true, Err: cause}
		}
		p.log.Warn("QEMU went away; reconnecting", "addr", p.cfg.Upstream, "err", cause)
		outage = true
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// listenAll listens on every address, or on none.
func listenAll(ctx context.Context, addrs []string, cfg *tls.Config) ([]net.Listener, []string, error) {
	var lns []net.Listener
	var bound []string
	fail := func(err error) ([]net.Listener, []string, error) {
		for i, ln := range lns {
			ln.Close()
			if a, _ := protocol.ParseAddress(bound[i]); a.Network == "unix" {
				os.Remove(a.Addr)
			}
		}
		return nil, nil, err
	}
	for _, s := range addrs {
		a, err := protocol.ParseAddress(s)
		if err != nil {
			return fail(err)
		}
		ln, err := protocol.ListenTLS(ctx, a, cfg)
		if err != nil {
			return fail(err)
		}
		if a.Network == "tcp" {
			a.Addr = ln.Addr().String()
		}
		lns = append(lns, ln)
		bound = append(bound, a.String())
	}
	return lns, bound, nil
}

// establish is the upstream session hook: QEMU's greeting, then
// negotiation, with oob when QEMU offers it.
func (p *Proxy) establish(ctx context.Context, s *protocol.Session) error {
	defer p.barrier()
	greeting, err := s.Recv()
	if err != nil {
		return &GreetingError{Err: err}
	}
	var g struct {
		QMP *struct {
			Capabilities []string `json:"capabilities"`
		} `json:"QMP"`
	}
	if json.Unmarshal(greeting, &g) != nil || g.QMP == nil {
		return fmt.Errorf("not a QMP greeting: %.120s", greeting)
	}
	req := `{"execute":"qmp_capabilities","id":0}`
	if slices.Contains(g.QMP.Capabilities, "oob") {
		req = `{"execute":"qmp_capabilities","arguments":{"enable":["oob"]},"id":0}`
	}
	if err := s.Send([]byte(req)); err != nil {
		return fmt.Errorf("negotiating: %w", err)
	}
	for {
		msg, err := s.Recv()
		if err != nil {
			return fmt.Errorf("negotiating: %w", err)
		}
		var r struct {
			Event  string          `json:"event"`
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class, Desc string
			} `json:"error"`
		}
		if json.Unmarshal(msg, &r) != nil {
			return fmt.Errorf("negotiating: not a JSON object: %.120s", msg)
		}
		switch {
		case r.Event != "":
			continue // nobody is there to see it
		case r.Error != nil:
			return fmt.Errorf("qmp_capabilities: %s: %s", r.Error.Class, r.Error.Desc)
		case r.Return == nil:
			return fmt.Errorf("negotiating: unexpected reply %.120s", msg)
		}
		break
	}
	p.mu.Lock()
	p.greeting, p.offered = greeting, g.QMP.Capabilities
	p.mu.Unlock()
	return nil
}

// testHookBarrier and testHookForward, when set by a test, run as
// establish reaches the barrier of sendMu, and as forward is about to
// send a request it registered.
var testHookBarrier, testHookForward func()

// barrier waits for the requests registered under the previous
// connection to QEMU to be sent or refused (see sendMu): the new
// connection goes live only once establish has returned.
func (p *Proxy) barrier() {
	if testHookBarrier != nil {
		testHookBarrier()
	}
	p.sendMu.Lock()
	p.sendMu.Unlock()
}

// ended tells Run that the upstream session is over.
func (p *Proxy) ended(cause error) {
	p.mu.Lock()
	ch := p.lostCh
	p.mu.Unlock()
	select {
	case ch <- cause:
	default:
	}
}

func (p *Proxy) startServing() {
	p.mu.Lock()
	p.serving = true
	close(p.servingCh)
	p.mu.Unlock()
	if p.cfg.Serving != nil {
		p.cfg.Serving(true)
	}
}

// stopServing closes every client, as QEMU going away would, and
// forgets every call in flight.
func (p *Proxy) stopServing() {
	p.mu.Lock()
	was := p.serving
	if p.serving {
		p.serving = false
		p.servingCh = make(chan struct{})
	}
	for c := range p.clients {
		c.kill("")
	}
	clear(p.pending)
	p.endFilesCall(p.filesCall)
	p.mu.Unlock()
	if was && p.cfg.Serving != nil {
		p.cfg.Serving(false)
	}
}

// handle routes one message from QEMU, in QEMU's order: an event to
// every negotiated client, a reply to the client that asked. It never
// blocks: a client that cannot take more is closed instead.
func (p *Proxy) handle(msg []byte) error {
	var idm member
	hasID, event := false, false
	if err := members(msg, func(m member) bool {
		switch string(m.key) {
		case "id":
			idm, hasID = m, true
		case "event":
			event = true
		}
		return true
	}); err != nil {
		p.log.Warn("dropped a message from QEMU that is not a JSON object", "msg", truncate(msg))
		return nil
	}
	if event {
		ev := bytes.Clone(msg) // shared by every client, read only
		p.mu.Lock()
		for c := range p.clients {
			if c.negotiated {
				c.push(ev)
			}
		}
		p.mu.Unlock()
		return nil
	}
	var id uint64 // 0: the reply to the request sent without an id
	if hasID {
		var err error
		if id, err = strconv.ParseUint(string(msg[idm.vstart:idm.end]), 10, 64); err != nil || id == 0 {
			p.log.Warn("dropped a reply from QEMU with no id of the proxy's", "msg", truncate(msg))
			return nil
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	cl := p.pending[id]
	if cl == nil {
		p.log.Warn("dropped a reply from QEMU to no request", "msg", truncate(msg))
		return nil
	}
	delete(p.pending, id)
	p.endFilesCall(cl)
	c := cl.c
	if hasID {
		c.push(replaceMember(msg, idm, cl.id))
	} else {
		c.push(appendID(msg, cl.id))
	}
	for _, m := range cl.after {
		c.push(m)
	}
	if c.last == cl {
		c.last = nil
	}
	c.answered()
	return nil
}

func truncate(msg []byte) string {
	if len(msg) > 120 {
		return string(msg[:120]) + "..."
	}
	return string(msg)
}

// acceptLoop admits the clients of one listener until the listener is
// closed.
func (p *Proxy) acceptLoop(ctx context.Context, ln net.Listener, addr string) {
	defer p.wg.Done()
	delay := 5 * time.Millisecond
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors, say: new clients wait in the backlog
			// until some leave.
			p.log.Warn("cannot accept a client", "addr", addr, "err", err)
			if !sleep(ctx, delay) {
				return
			}
			delay = min(2*delay, time.Second)
			continue
		}
		delay = 5 * time.Millisecond
		if tc, ok := conn.(*tls.Conn); ok {
			// Handshake first, so that a client refused (no certificate,
			// another CA) is never greeted nor counted, and aside, so
			// that a slow one delays nobody else.
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				if !p.handshake(ctx, tc) || !p.admit(ctx, tc, addr) {
					tc.Close()
				}
			}()
			continue
		}
		if !p.admit(ctx, conn, addr) {
			conn.Close()
			return
		}
	}
}

// handshake runs a TLS client's handshake, within ConnectTimeout, and
// says whether it passed; the proxy's ClientAuth decides whether a
// client without a certificate may.
func (p *Proxy) handshake(ctx context.Context, tc *tls.Conn) bool {
	hctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		if ctx.Err() == nil {
			p.log.Warn("client refused", "from", tc.RemoteAddr().String(), "err", err)
		}
		return false
	}
	return true
}

// admit serves conn once the proxy is connected to QEMU; until then the
// client waits, as it would for a busy QEMU, with no greeting.
func (p *Proxy) admit(ctx context.Context, conn net.Conn, addr string) bool {
	for {
		p.mu.Lock()
		if p.serving {
			p.nextClient++
			name := "client " + strconv.Itoa(p.nextClient)
			if ra := conn.RemoteAddr(); ra != nil && ra.String() != "" && ra.Network() != "unix" {
				name += " (from " + ra.String() + ")"
			} else {
				name += " (on " + addr + ")"
			}
			c := newClient(p, conn, name)
			p.clients[c] = struct{}{}
			c.push(p.greeting)
			p.wg.Add(1)
			p.mu.Unlock()
			p.log.Info("client connected", "client", name)
			go c.serve()
			return true
		}
		ch := p.servingCh
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// endFilesCall lets the next request with descriptors go, if cl is the
// one in flight. p.mu is held.
func (p *Proxy) endFilesCall(cl *call) {
	if cl != nil && p.filesCall == cl {
		p.filesCall = nil
		close(p.filesFree)
	}
}

// forward sends the client's request to QEMU under an id of the proxy's,
// or none, and files with it.
func (p *Proxy) forward(c *client, r *request, fds []int) {
	files := make([]*os.File, len(fds))
	for i, fd := range fds {
		files[i] = os.NewFile(uintptr(fd), "client-fd")
	}
	defer func() {
		for _, f := range files {
			f.Close() // QEMU has its own copy once sent
		}
	}()
	p.sendMu.RLock()
	defer p.sendMu.RUnlock()
	p.mu.Lock()
	for {
		if !p.serving {
			p.mu.Unlock()
			c.reply(appendError(nil, r.id, genericError("QEMU is not connected to the proxy")))
			return
		}
		if len(files) == 0 || p.filesCall == nil {
			break
		}
		// Another request's descriptors are with QEMU: wait for its
		// reply (see filesCall).
		free := p.filesFree
		p.mu.Unlock()
		select {
		case <-free:
		case <-c.done:
			return // the client is gone: its request goes nowhere
		}
		if c.killed.Load() {
			return // killed as the slot came free (QEMU went away)
		}
		p.mu.Lock()
	}
	// An in-band request goes without an id when no other request sent
	// without one is pending (one whose client left included): every
	// other request in flight carries an id, so an id-less reply can
	// only be its. Fewer bytes matter: QEMU reads its monitor a byte at
	// a time. exec-oob's reply may overtake: it always has an id.
	var id uint64
	if _, busy := p.pending[0]; r.oob || busy {
		id = wire.NextID(p.pending, &p.lastID)
	}
	cl := &call{c: c, id: r.id}
	p.pending[id] = cl
	if len(files) > 0 {
		p.filesCall, p.filesFree = cl, make(chan struct{})
	}
	if !r.oob {
		c.last = cl
	}
	c.inflight++
	p.mu.Unlock()

	msg := appendUpstream(make([]byte, 0, 64+len(r.args)), r, id)
	if testHookForward != nil {
		testHookForward()
	}
	var err error
	if len(files) > 0 {
		err = p.up.SendFiles(context.Background(), msg, files...)
	} else {
		err = p.up.SendNow(context.Background(), msg)
	}
	if err == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending[id] != cl {
		return // the session ended, and took the call with it
	}
	delete(p.pending, id)
	p.endFilesCall(cl)
	if c.last == cl {
		c.last = nil
	}
	c.push(appendError(nil, r.id, genericError("the proxy could not send the command to QEMU: "+err.Error())))
	for _, m := range cl.after {
		c.push(m)
	}
	c.answered()
}
