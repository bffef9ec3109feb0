package qmp

import (
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Event is an asynchronous QMP event.
type Event struct {
	Name      string
	Data      json.RawMessage // nil when the event has no data
	Timestamp time.Time       // when QEMU emitted it
	Raw       json.RawMessage // the whole message as received
}

// Listener receives the events of its Client whose names it asked for,
// each once, in arrival order. It has its own queue, so the reader never
// waits for it; when more than the backlog is undelivered, new events are
// dropped, counted by Dropped and logged. A Listener outlives sessions:
// it keeps receiving after a reconnect, until Close.
type Listener struct {
	c       *Client
	names   map[string]bool // nil: every event
	backlog int

	mu      sync.Mutex
	queue   []Event
	wake    chan struct{} // capacity 1
	stop    chan struct{}
	done    chan struct{} // closed when the delivery goroutine has returned
	closing sync.Once

	queued  atomic.Int64 // undelivered events, in queue or in hand
	dropped atomic.Uint64

	events chan Event
}

// Listen returns a Listener for the named events, or for every event when
// no name is given. Close it when done: it owns a goroutine.
func (c *Client) Listen(names ...string) *Listener {
	l := &Listener{
		c:       c,
		backlog: c.cfg.eventBacklog,
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		events:  make(chan Event),
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
	go l.deliver()
	return l
}

// Events returns the channel events arrive on. It is closed by Close.
func (l *Listener) Events() <-chan Event { return l.events }

// Dropped returns how many events were dropped because the backlog was
// full.
func (l *Listener) Dropped() uint64 { return l.dropped.Load() }

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

// push queues ev without ever blocking the reader.
func (l *Listener) push(ev Event) {
	if l.queued.Load() >= int64(l.backlog) {
		if n := l.dropped.Add(1); n&(n-1) == 0 { // log at 1, 2, 4, 8... drops
			l.c.log.Warn("event listener is not keeping up; dropping events",
				"event", ev.Name, "dropped", n, "backlog", l.backlog)
		}
		return
	}
	l.queued.Add(1)
	l.mu.Lock()
	l.queue = append(l.queue, ev)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// deliver moves events from the queue to the channel, a batch at a time.
func (l *Listener) deliver() {
	defer close(l.done)
	defer close(l.events)
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
		for i := range batch {
			select {
			case l.events <- batch[i]:
				l.queued.Add(-1)
				batch[i] = Event{} // let the data go
			case <-l.stop:
				return
			}
		}
	}
}

// dispatch hands an event to every listener that wants it.
func (c *Client) dispatch(r *reply) {
	ev := Event{Name: r.Event, Data: r.Data, Raw: r.raw}
	if r.Timestamp != nil {
		ev.Timestamp = time.Unix(r.Timestamp.Seconds, r.Timestamp.Microseconds*1000)
	}
	c.log.Debug("event", "name", ev.Name)
	for _, l := range *c.listeners.Load() {
		if l.wants(ev.Name) {
			l.push(ev)
		}
	}
}
