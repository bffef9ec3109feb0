package qmp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Event is an asynchronous QMP event.
type Event struct {
	Name      string
	Data      json.RawMessage // nil when the event has no data
	Timestamp time.Time       // when QEMU emitted it; zero if it did not say
}

// MarshalJSON encodes the event as QEMU sends it, compact:
// {"timestamp":{"seconds":S,"microseconds":U},"event":NAME,"data":DATA},
// without timestamp or data when the event had none. The client keeps
// only the data of each event, not the whole message, so that a flood
// costs half the memory.
func (e Event) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.Grow(80 + len(e.Name) + len(e.Data))
	b.WriteByte('{')
	if !e.Timestamp.IsZero() {
		b.WriteString(`"timestamp":{"seconds":`)
		b.Write(strconv.AppendInt(b.AvailableBuffer(), e.Timestamp.Unix(), 10))
		b.WriteString(`,"microseconds":`)
		b.Write(strconv.AppendInt(b.AvailableBuffer(), int64(e.Timestamp.Nanosecond()/1000), 10))
		b.WriteString("},")
	}
	b.WriteString(`"event":`)
	name, err := json.Marshal(e.Name)
	if err != nil {
		return nil, err
	}
	b.Write(name)
	if e.Data != nil {
		b.WriteString(`,"data":`)
		if err := json.Compact(&b, e.Data); err != nil {
			return nil, fmt.Errorf("event %s: data: %w", e.Name, err)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Listener receives the events of its Client whose names it asked for,
// each once, in arrival order. It has its own queue, so the reader never
// waits for it; when more than the backlog is undelivered, new events are
// dropped, counted by Dropped and logged. A Listener outlives sessions:
// it keeps receiving after a reconnect, until Close.
type Listener struct {
	c       *Client
	names   map[string]bool // nil: every event
	filter  *filter         // nil: any data; see ListenMatch
	backlog int

	mu     sync.Mutex
	queue  []Event // events that did not fit in the channel's buffer
	queued int     // events in queue or in the delivery goroutine's hand
	closed bool    // events is closed

	wake    chan struct{} // capacity 1
	moved   chan struct{} // capacity 1: deliver uncounted an event it had sent; see Take
	taking  atomic.Int32  // Takes under way, which want moved
	stop    chan struct{}
	done    chan struct{} // closed when the delivery goroutine has returned
	closing sync.Once

	dropped atomic.Uint64

	// events is buffered, so that the reader can hand it a few events
	// directly while nothing is queued (see push), and the receiver takes
	// many at a wakeup.
	// Its buffer counts towards the backlog.
	events chan Event
}

// directEvents is how many events push may send into a Listener's channel
// itself; see push.
const directEvents = 16

// listenerBuffer is the capacity of a Listener's channel.
const listenerBuffer = 1024

// fillEvents is how many events deliver moves into the channel under one
// hold of the Listener's lock: push waits for at most that many sends
// (~10 us). Against 64, a flood of events measured 3% faster, from fewer
// handovers of the lock between push and deliver; 1024 gained little more.
const fillEvents = 256

// Listen returns a Listener for the named events, or for every event when
// no name is given. Close it when done: it owns a goroutine.
func (c *Client) Listen(names ...string) *Listener { return c.listen(nil, names) }

func (c *Client) listen(f *filter, names []string) *Listener {
	l := &Listener{
		c:       c,
		filter:  f,
		backlog: c.cfg.eventBacklog,
		wake:    make(chan struct{}, 1),
		moved:   make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		events:  make(chan Event, listenerBuffer),
	}
	if len(names) > 0 {
		l.names = make(map[string]bool, len(names))
		for _, n := range names {
			l.names[n] = true
		}
	}
	c.listenMu.Lock()
	list := append(slices.Clone(*c.listeners.Load()), l)
	c.listeners.Store(&list)
	c.listenMu.Unlock()
	c.proto.Wake() // events are to be read as they come: see Client.yield
	go l.deliver()
	return l
}

// Events returns the channel events arrive on. It is closed by Close.
func (l *Listener) Events() <-chan Event { return l.events }

// Dropped returns how many events were dropped because the backlog was
// full.
func (l *Listener) Dropped() uint64 { return l.dropped.Load() }

// Len returns how many events are waiting to be received from Events.
// While it is above zero, a receive from Events will not block for long,
// except that for a moment Len may count one event twice as it moves into
// the channel: Take, not a receive, empties the Listener without waiting.
func (l *Listener) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.queued + len(l.events)
}

// Take returns the next event that has arrived, and true, or false at
// once when none has (Len is zero). It never waits for events yet to
// come, only, briefly, for one the Listener is handing over: it is how a
// receiver empties the Listener, say before it reports that the
// connection was lost.
func (l *Listener) Take() (Event, bool) {
	l.taking.Add(1)
	defer l.taking.Add(-1)
	for l.Len() > 0 {
		select {
		case ev, ok := <-l.events:
			return ev, ok
		case <-l.moved:
			// The delivery goroutine has uncounted an event it had
			// sent, which Len counted twice till then: count again.
		}
	}
	return Event{}, false
}

// Close stops delivery, closes the Events channel and detaches the
// listener from its client. It is idempotent.
func (l *Listener) Close() {
	l.closing.Do(func() {
		c := l.c
		c.listenMu.Lock()
		list := slices.DeleteFunc(slices.Clone(*c.listeners.Load()), func(x *Listener) bool { return x == l })
		c.listeners.Store(&list)
		c.listenMu.Unlock()
		close(l.stop)
	})
	<-l.done
}

func (l *Listener) wants(name string) bool { return l.names == nil || l.names[name] }

// wantsAll reports whether l wants every one of evs.
func (l *Listener) wantsAll(evs []Event) bool {
	if l.filter != nil {
		return false
	}
	if l.names == nil {
		return true
	}
	var name string // the last name looked up, and whether l wants it
	want := l.names[name]
	for i := range evs {
		if evs[i].Name != name { // names are interned: mostly a pointer comparison
			name, want = evs[i].Name, l.names[evs[i].Name]
		}
		if !want {
			return false
		}
	}
	return true
}

// wakeUp tells the delivery goroutine that there is something queued.
func (l *Listener) wakeUp() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// push queues the events l wants without ever blocking the reader; the
// delivery goroutine moves them into the channel. A few events, with
// nothing queued before them, go straight into the channel instead, so
// that an event followed by a reply (STOP, then stop's return) can be
// received at once when the call returns. For a flood, sending from here
// would have the reader and the receiver contend for the channel's lock
// event by event. If take, push may take *evs whole as its queue, giving
// an empty slice back, which spares copying each event once more.
func (l *Listener) push(evs *[]Event, take bool) {
	var queued bool
	var drops []uint64 // counts to log at; see below
	var dropName string
	direct := len(*evs) <= directEvents
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	if !direct && take && len(l.queue) == 0 && l.queued+len(l.events)+len(*evs) <= l.backlog && l.wantsAll(*evs) {
		l.queue, *evs = *evs, l.queue[:0]
		l.queued += len(l.queue)
		l.mu.Unlock()
		l.wakeUp()
		return
	}
	var name string // the last name looked up, and whether l wants it
	want := l.wants(name)
	for i := range *evs {
		ev := &(*evs)[i]
		if ev.Name != name { // names are interned: mostly a pointer comparison
			name, want = ev.Name, l.wants(ev.Name)
		}
		switch {
		case !want, !l.filter.matches(ev):
			continue
		case l.queued+len(l.events) >= l.backlog:
			if n := l.dropped.Add(1); n&(n-1) == 0 { // log at 1, 2, 4, 8... drops
				drops, dropName = append(drops, n), ev.Name
			}
			continue
		case direct && l.queued == 0:
			select {
			case l.events <- *ev:
				continue
			default:
			}
		}
		l.queued++
		l.queue = append(l.queue, *ev)
		queued = true
	}
	l.mu.Unlock()
	if queued {
		l.wakeUp()
	}
	for _, n := range drops {
		l.c.log.Warn("event listener is not keeping up; dropping events",
			"event", dropName, "dropped", n, "backlog", l.backlog)
	}
}

// deliver moves events from the queue to the channel, a batch at a time.
func (l *Listener) deliver() {
	defer close(l.done)
	defer l.shut()
	var batch []Event
	for {
		select {
		case <-l.wake:
		case <-l.stop:
			return
		}
		l.mu.Lock()
		batch, l.queue = l.queue, batch[:0]
		l.mu.Unlock()
		for i := 0; i < len(batch); {
			// Moving events into the channel and uncounting them happen
			// under one lock while there is room, so Len never counts
			// an event twice; at most fillEvents at a time, so that push
			// does not wait long for the lock. Only when the channel is
			// full does a send wait, outside the lock.
			l.mu.Lock()
			n := 0
		fill:
			for ; i < len(batch) && n < fillEvents; i, n = i+1, n+1 {
				select {
				case l.events <- batch[i]:
					batch[i] = Event{} // let the data go
				default:
					break fill
				}
			}
			l.queued -= n
			l.mu.Unlock()
			if n == 0 {
				select {
				case l.events <- batch[i]:
					// Till queued drops, Len counts this event twice.
					l.mu.Lock()
					l.queued--
					l.mu.Unlock()
					if l.taking.Load() != 0 {
						select {
						case l.moved <- struct{}{}:
						default:
						}
					}
					batch[i] = Event{}
					i++
				case <-l.stop:
					return
				}
			}
		}
	}
}

// shut closes the channel, dropping what its buffer holds: after Close,
// nothing more is received.
func (l *Listener) shut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	l.queue, l.queued = nil, 0
	for drained := false; !drained; {
		select {
		case <-l.events: // a receiver may be taking them too
		default:
			drained = true
		}
	}
	close(l.events)
}

// dispatch records an event for the listeners, and handOn hands what was
// recorded to them. The reader calls handOn before it routes a reply, and
// protocol calls it (Config.Drained) before it reads more input, so that
// events are handed on a read buffer at a time, listeners wake once per
// batch rather than once per event, and yet an event reaches them before
// any reply that followed it reaches its caller, and is never held while
// the connection is quiet. A read buffer can hold thousands of events, so
// dispatch also hands them on every handOnEvery: listeners then work
// through a flood alongside the reader instead of after it. Both run on
// the goroutine reading the connection.
func (c *Client) dispatch(r *reply, borrowed bool) {
	ev := Event{Name: r.Event, Data: r.Data}
	if ts, ok := r.stamp(); ok {
		ev.Timestamp = time.Unix(ts.Seconds, ts.Microseconds*1000)
	}
	if c.log.Enabled(context.Background(), slog.LevelDebug) {
		c.log.Debug("event", "name", ev.Name)
	}
	if len(*c.listeners.Load()) > 0 {
		// Asked once: a Listener made after a first look would get data
		// still in the read buffer.
		if borrowed && ev.Data != nil {
			ev.Data = c.in.own(ev.Data)
		}
		if c.in.events = append(c.in.events, ev); len(c.in.events) >= handOnEvery {
			c.handOn()
		}
	}
}

const handOnEvery = 256

func (c *Client) handOn() {
	if len(c.in.events) == 0 {
		return
	}
	ls := *c.listeners.Load()
	for i, l := range ls {
		l.push(&c.in.events, i == len(ls)-1)
	}
	clear(c.in.events) // let the data go
	c.in.events = c.in.events[:0]
}
