package protocol

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// Caller reads. A call that waits alone for its reply gets it fastest by
// reading the connection itself: handed over by the reader goroutine, the
// reply costs a second wake-up, a third of a round trip on a local
// socket. So whoever holds the read token (session.rmu) reads and
// handles messages: the reader goroutine, or a caller in Read while the
// reader goroutine has yielded (Config.Yield). A caller that cannot take
// the token waits as before, for the holder to hand it its reply.

// idleRead is how long a yielded reader goroutine waits for callers to
// read before it takes the connection back, so that the peer hanging up
// or sending garbage is noticed while nobody calls. Tests change it.
var idleRead = time.Millisecond

// testHookParked, if set, is called each time the reader goroutine has
// yielded the connection and is about to wait, untimed or not.
var testHookParked func(untimed bool)

// park waits, without the read token, until the reader goroutine must
// read again, and takes the token; it reports false, without the token,
// when the session is over.
func (s *session) park() bool {
	var idle *time.Timer
	defer func() {
		if idle != nil {
			idle.Stop()
		}
	}()
	for {
		// Someone waits for a message: read for them, unless a caller
		// is reading, which wakes us as it lets go if we are needed.
		if !s.p.cfg.Yield() && s.rmu.TryLock() {
			return s.locked()
		}
		reads := s.reads.Load()
		if testHookParked != nil {
			testHookParked(s.untimed.Load())
		}
		var tick <-chan time.Time
		if !s.untimed.Load() {
			if idle == nil {
				idle = time.NewTimer(idleRead)
			} else {
				idle.Reset(idleRead)
			}
			tick = idle.C
		}
		select {
		case <-s.resume:
			s.untimed.Store(false)
		case <-tick:
			if s.reads.Load() != reads {
				continue // callers are at it
			}
			// Take the connection back, unless a Read begun earlier is
			// still under way: then wait for it to wake us as it lets
			// go (see Read), rather than check every idleRead.
			s.untimed.Store(true)
			if s.rmu.TryLock() {
				s.untimed.Store(false)
				return s.locked()
			}
		case <-s.done:
			return false
		}
	}
}

// locked keeps the read token just taken, reporting true, unless the
// session is over.
func (s *session) locked() bool {
	if s.over.Load() {
		s.rmu.Unlock()
		return false
	}
	return true
}

// Read lets the calling goroutine read and handle messages itself, as the
// reader goroutine would, until done returns true with no whole message
// left buffered, ctx ends or the session does. Done is called by the
// calling goroutine, between messages. Read reports false at once, having
// done nothing, unless Config.Yield is set, the connection takes read
// deadlines, and nobody else is reading it (the reader goroutine has
// yielded it, or not yet begun). A read error ends the session as in the
// reader goroutine; ctx ending interrupts a read without losing any of
// the stream.
func (p *Protocol) Read(ctx context.Context, done func() bool) bool {
	s := p.live.Load()
	if s == nil || !s.yields || !s.rmu.TryLock() {
		return false
	}
	if s.over.Load() {
		// Disconnect may be past waitReaders, and a new session may be
		// handling messages: touch nothing.
		s.rmu.Unlock()
		return true
	}
	s.reads.Add(1)
	err := s.readUntil(ctx, done)
	if drained := p.cfg.Drained; drained != nil {
		drained()
	}
	if err != nil {
		s.end(err) // before letting go, so nobody handles what follows
	}
	s.rmu.Unlock()
	// Asked after letting go: a call that begins to wait after this
	// finds the token free and reads for itself.
	if err == nil && (s.untimed.Load() || !p.cfg.Yield()) {
		s.wake()
	}
	return true
}

func (s *session) readUntil(ctx context.Context, done func() bool) error {
	if ctx.Err() != nil {
		return nil
	}
	defer s.watch(ctx)()
	handle := s.p.cfg.Handle
	// Go on while a whole message is buffered too: with the reader
	// goroutine yielded, nobody else would handle it soon.
	for !done() || s.lineBuffered() {
		if s.over.Load() {
			return nil
		}
		msg, err := s.read()
		if err != nil {
			if deadlineError(err) {
				if ctx.Err() != nil {
					return nil // interrupted: s.read kept what came
				}
				return fmt.Errorf("reading from peer: unexpected read deadline: %w", err)
			}
			return err
		}
		if handle != nil {
			if err := handle(msg); err != nil {
				return err
			}
		}
	}
	return nil
}

// deadlineError reports whether err is a read deadline passing. A
// caller's own net.Conn may not wrap os.ErrDeadlineExceeded, as it
// should, but still say Timeout.
func deadlineError(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// Wake has a yielded reader goroutine take the connection back from
// callers (see Config.Yield), for a caller that now needs messages read
// as they come.
func (p *Protocol) Wake() {
	if s := p.live.Load(); s != nil {
		s.wake()
	}
}

func (s *session) wake() {
	select {
	case s.resume <- struct{}{}:
	default:
	}
}

// waitReaders waits for a Read under way to finish, and lets go of the
// context the last one watched; after it, a Read of this session touches
// nothing. Disconnect calls it once the session has ended, before a new
// session can start.
func (s *session) waitReaders() {
	s.rmu.Lock()
	s.unwatch()
	s.rmu.Unlock()
}

// lineBuffered reports whether a whole message is buffered. The caller
// holds rmu.
func (s *session) lineBuffered() bool {
	if len(s.rd.partial) == 0 {
		s.dropBlankLines()
	}
	return bytes.IndexByte(s.rd.in.buf[s.rd.in.r:s.rd.in.w], '\n') >= 0
}

// dropBlankLines drops the blank lines buffered at the start of a
// message, which read would skip: they are no message, and a Read that
// went on for them would block.
func (s *session) dropBlankLines() {
	in := &s.rd.in
	for {
		b := in.buf[in.r:in.w]
		switch {
		case len(b) > 0 && b[0] == '\n':
			in.r++
		case len(b) > 1 && b[0] == '\r' && b[1] == '\n':
			in.r += 2
		default:
			return
		}
	}
}

// watch makes ctx ending interrupt the Read under way, by setting a read
// deadline in the past, and returns what undoes it. The interruption is
// registered once for calls in a row that pass the same context (its
// Done channel), as a caller making calls in a loop does, and stays
// registered between them: it touches only a Read of that context, so
// it is harmless when it runs late. The caller holds rmu.
func (s *session) watch(ctx context.Context) (stop func()) {
	done := ctx.Done()
	if done == nil {
		return func() {}
	}
	if done != s.rd.watched {
		s.unwatch()
		s.rd.watched = done
		s.rd.stopWatch = context.AfterFunc(ctx, func() { s.interrupt(done) })
	}
	s.dlMu.Lock()
	s.reading = done
	select {
	case <-done: // ended as we began: interrupt ran too early to see us
		s.conn.SetReadDeadline(aLongTimeAgo)
		s.dlSet = true
	default:
	}
	s.dlMu.Unlock()
	return s.readDone
}

// interrupt makes a blocked read of the connection return, if the Read
// under way watches done.
func (s *session) interrupt(done <-chan struct{}) {
	s.dlMu.Lock()
	defer s.dlMu.Unlock()
	if s.reading == done {
		s.conn.SetReadDeadline(aLongTimeAgo)
		s.dlSet = true
	}
}

// readDone ends what watch began for one Read.
func (s *session) readDone() {
	s.dlMu.Lock()
	defer s.dlMu.Unlock()
	s.reading = nil
	if s.dlSet {
		s.conn.SetReadDeadline(time.Time{})
		s.dlSet = false
	}
}

// unwatch drops the registered interruption, if any. The caller holds
// rmu.
func (s *session) unwatch() {
	if s.rd.stopWatch != nil {
		s.rd.stopWatch()
		s.rd.watched, s.rd.stopWatch = nil, nil
	}
}
