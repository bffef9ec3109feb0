package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/qmpsh/qmpsh/pkg/protocol"
	"github.com/qmpsh/qmpsh/pkg/wire"
)

// client is one downstream connection.
type client struct {
	p     *Proxy
	name  string
	conn  net.Conn
	queue chan []byte   // to the client, in order; bounded
	done  chan struct{} // closed by kill
	// written is closed when the writer has written everything up to
	// the end of a draining client's queue (nil).
	written chan struct{}

	killOnce sync.Once
	killed   atomic.Bool

	// A message pushed while nothing is queued or being written is
	// written at once, by the goroutine pushing it (see push), which
	// spares waking the writer for each reply. wmu is held by whoever
	// writes to conn; queued counts the messages pushed into queue and
	// not yet written; tail is what such a direct write left unwritten
	// (guarded by wmu), for the writer to write before anything else.
	raw    syscall.RawConn // nil: no direct writes (TLS)
	wmu    sync.Mutex
	queued atomic.Int32
	// queuedBytes is the length of the messages in queue (see
	// Config.QueueBytes): a client that asks for long replies and reads
	// none (a loop of query-qmp-schema, 207 KB each) would hold more
	// memory than QueueLen says.
	queuedBytes atomic.Int64
	tail        []byte
	// ended: the end of the queue (nil) is pushed; nothing after it is
	// written (guarded by p.mu).
	ended bool

	// Guarded by p.mu; written only by the client's own reader goroutine.
	negotiated, oob bool
	// last is the client's latest in-band call QEMU has not answered
	// (guarded by p.mu): replies the proxy makes itself wait behind it,
	// so that a client sees its replies in the order of its requests,
	// as from QEMU.
	last *call
	// inflight counts the client's calls QEMU has not answered, and
	// draining says the client has stopped sending (guarded by p.mu):
	// the connection then closes once the last reply is written.
	inflight int
	draining bool
}

func newClient(p *Proxy, conn net.Conn, name string) *client {
	c := &client{
		p:       p,
		name:    name,
		conn:    conn,
		queue:   make(chan []byte, p.cfg.QueueLen),
		done:    make(chan struct{}),
		written: make(chan struct{}),
	}
	if sc, ok := conn.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	return c
}

// push queues msg for the client without blocking; a client whose queue
// is full is closed. It is called under p.mu, so that messages from the
// upstream reader and the client's own reader keep one order. When
// nothing is queued or being written, it writes msg itself, without
// blocking, and queues only what the connection would not take.
func (c *client) push(msg []byte) {
	if c.killed.Load() || c.ended {
		return
	}
	c.ended = msg == nil
	if msg != nil && c.raw != nil && c.queued.Load() == 0 && c.wmu.TryLock() {
		if c.queued.Load() == 0 {
			c.writeNow(msg)
			c.wmu.Unlock()
			return
		}
		c.wmu.Unlock()
	}
	c.queued.Add(1)
	// What waited before msg counts: msg alone may be longer.
	if bound := c.p.cfg.QueueBytes; c.queuedBytes.Add(int64(len(msg)))-int64(len(msg)) > bound {
		c.kill(fmt.Sprintf("it does not read fast enough (more than %s of messages wait for it)", sizeString(bound)))
		return
	}
	select {
	case c.queue <- msg:
	default:
		c.kill("it does not read fast enough (its queue of messages is full)")
	}
}

// sizeString says n bytes in MiB, or KiB, when that is whole.
func sizeString(n int64) string {
	switch {
	case n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// writeNow makes one non-blocking write of msg and its newline, for push,
// which holds wmu with nothing queued. What the connection does not take
// is left in tail for the writer, woken with an empty message; a write
// error closes the client.
func (c *client) writeNow(msg []byte) {
	// Traced first, as the session traces what it sends: once the
	// client has the reply, its next request may be traced at once.
	if trace := c.p.cfg.Trace; trace != nil {
		trace(c.name, protocol.Sent, msg)
	}
	b := append(append(make([]byte, 0, len(msg)+1), msg...), '\n')
	var n int
	var err error
	if rerr := c.raw.Write(func(fd uintptr) bool {
		n, err = protocol.WriteFD(fd, b)
		return true // done, whatever happened: never wait here
	}); rerr != nil {
		err = rerr // closed under us
	}
	switch {
	case err == syscall.EAGAIN:
		n = 0 // full: all of it for the writer
	case err != nil:
		c.kill("")
		return
	}
	if n < len(b) {
		c.tail = b[max(n, 0):]
		c.queued.Add(1)
		select {
		case c.queue <- []byte{}:
		default:
			c.kill("it does not read fast enough (its queue of messages is full)")
		}
	}
}

// answered counts a call answered, under p.mu; the last one a draining
// client waited for ends its queue.
func (c *client) answered() {
	c.inflight--
	if c.draining && c.inflight == 0 {
		c.push(nil)
	}
}

// reply queues a reply the proxy made itself, behind the client's calls
// still in flight.
func (c *client) reply(msg []byte) {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	if c.last != nil {
		// Held back, they count against the client's queue like any
		// message it has not taken.
		if len(c.last.after)+len(c.queue) >= cap(c.queue) {
			c.kill("it does not read fast enough (its queue of messages is full)")
			return
		}
		c.last.after = append(c.last.after, msg)
		return
	}
	c.push(msg)
}

// kill closes the connection, which ends both of the client's
// goroutines. It never blocks, so it may be called under p.mu.
func (c *client) kill(why string) {
	c.killOnce.Do(func() {
		c.killed.Store(true)
		close(c.done)
		c.conn.Close()
		if why != "" {
			c.p.log.Warn("closing " + c.name + ": " + why)
		}
	})
}

// serve runs the client: its reader here, its writer in a goroutine of
// its own. It returns, with everything of the client's released, when
// either side ends.
func (c *client) serve() {
	defer c.p.wg.Done()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.writer()
	}()
	fr := newFrameReader(c.conn, c.p.cfg.MaxMessageSize)
	err := c.reader(fr)
	if errors.Is(err, io.EOF) {
		// The client has said all it will say (a script piping into
		// socat, say): like QEMU, answer it all before closing.
		c.p.mu.Lock()
		c.draining = true
		if c.inflight == 0 {
			c.push(nil)
		}
		c.p.mu.Unlock()
		<-c.written
	}
	c.kill("")
	wg.Wait()
	fr.closeFiles()
	c.p.mu.Lock()
	delete(c.p.clients, c)
	c.p.mu.Unlock()
	if left := c.p.cfg.Left; left != nil {
		left(c.name) // its writer has ended: nothing more is traced
	}
	var tl *tooLongError
	switch {
	case errors.As(err, &tl):
		c.p.log.Warn("closed " + c.name + ": " + err.Error())
	case errors.Is(err, io.EOF) || c.killed.Load():
		c.p.log.Info("client left", "client", c.name)
	default:
		c.p.log.Info("client left", "client", c.name, "err", err)
	}
}

func (c *client) reader(fr *frameReader) error {
	for {
		v, stray, err := fr.next()
		if err != nil {
			return err
		}
		if t := c.p.cfg.Trace; t != nil {
			t(c.name, protocol.Received, v)
		}
		if stray >= 0 {
			c.reply(appendError(nil, nil, strayError(v[stray:])))
			continue
		}
		c.request(v, fr)
	}
}

// request answers or forwards one value from the client.
func (c *client) request(v []byte, fr *frameReader) {
	p := c.p
	r, e := parseRequest(v, c.oob)
	if e != nil {
		var id []byte
		if r != nil {
			id = r.id
		}
		c.reply(appendError(nil, id, e))
		return
	}
	if !c.negotiated {
		if r.command != "qmp_capabilities" {
			c.reply(appendError(nil, r.id, &qmpError{"CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'"}))
			return
		}
		p.mu.Lock()
		offered := p.offered
		p.mu.Unlock()
		oob, e := negotiate(r.args, offered)
		if e != nil {
			c.reply(appendError(nil, r.id, e))
			return
		}
		// Under p.mu with the reply: no event reaches the client before
		// it, and every event QEMU sends after it does.
		p.mu.Lock()
		c.negotiated, c.oob = true, oob
		c.push(appendEmptyReturn(nil, r.id))
		p.mu.Unlock()
		return
	}
	// A second qmp_capabilities goes to QEMU as any command does: its
	// negotiation is over too, so it answers as it would answer this
	// client (the arguments checked, then "already complete").
	if why := p.cfg.Policy.Refusal(r.command); why != "" {
		c.reply(appendError(nil, r.id, genericError(why)))
		return
	}
	var fds []int
	if wire.TakesFiles(r.command) {
		if fds = fr.takeFiles(); len(fds) == 0 {
			// QEMU would give it whatever descriptors another client's
			// request left on the proxy's connection: answered here,
			// in QEMU's words.
			c.reply(appendError(nil, r.id, genericError("No file descriptor supplied via SCM_RIGHTS")))
			return
		}
	}
	p.forward(c, r, fds)
}

// writer writes the client's queue to it, batching what has piled up,
// until the client is killed or the queue ends (a nil message).
func (c *client) writer() {
	defer close(c.written)
	w := bufio.NewWriter(c.conn)
	trace := c.p.cfg.Trace
	end := false
	write := func(m []byte) {
		// Taken from the queue: what is being written counts no more.
		c.queuedBytes.Add(-int64(len(m)))
		switch {
		case m == nil:
			end = true
			return
		case len(m) == 0:
			return // push's: only its tail to write
		}
		if trace != nil {
			trace(c.name, protocol.Sent, m)
		}
		w.Write(m)
		w.WriteByte('\n')
	}
	for !end {
		select {
		case m := <-c.queue:
			c.wmu.Lock()
			if c.tail != nil {
				w.Write(c.tail)
				c.tail = nil
			}
			k := int32(1)
			write(m)
			for n := len(c.queue); n > 0 && !end; n-- {
				write(<-c.queue)
				k++
			}
			err := w.Flush()
			c.queued.Add(-k)
			c.wmu.Unlock()
			if err != nil {
				c.kill("")
				return
			}
		case <-c.done:
			return
		}
	}
}
