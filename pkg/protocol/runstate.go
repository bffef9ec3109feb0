package protocol

import (
	"context"
	"strconv"
	"sync"
)

// Runstate is the lifecycle state of a Protocol.
//
// A good session goes CONNECTING → RUNNING → DISCONNECTING → IDLE. A
// connect or accept that fails or is cancelled goes CONNECTING →
// DISCONNECTING → IDLE, and a Disconnect while IDLE goes DISCONNECTING →
// IDLE.
type Runstate int

const (
	// Idle means there is no connection and nothing to clean up.
	Idle Runstate = iota
	// Connecting means a connect or accept is under way.
	Connecting
	// Running means the session is established and messages flow.
	Running
	// Disconnecting means the session has ended or is ending; Disconnect
	// must be called to collect its error and return to Idle.
	Disconnecting
)

// String returns the state's name in upper case, as QEMU's Python library
// spells it.
func (s Runstate) String() string {
	switch s {
	case Idle:
		return "IDLE"
	case Connecting:
		return "CONNECTING"
	case Running:
		return "RUNNING"
	case Disconnecting:
		return "DISCONNECTING"
	}
	return "Runstate(" + strconv.Itoa(int(s)) + ")"
}

// A Watcher receives every runstate transition of its Protocol that
// happens after Watch returned it, in order, however late it starts
// reading. Its queue is unbounded, so the Protocol never waits for a slow
// watcher; Close it when done so the Protocol stops queueing for it.
// A Watcher is for whoever must see every transition, in order; to wait
// for the runstate to change, use Protocol.WaitForStateChange or
// Protocol.RunstateChanged.
type Watcher struct {
	p      *Protocol
	mu     sync.Mutex
	queue  []Runstate
	wake   chan struct{} // capacity 1: "the queue may be non-empty"
	closed bool
}

// Next returns the next transition, waiting for one if none is queued. It
// returns ctx's error if ctx ends first, and ErrWatcherClosed after Close.
func (w *Watcher) Next(ctx context.Context) (Runstate, error) {
	for {
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			return 0, ErrWatcherClosed
		}
		if len(w.queue) > 0 {
			s := w.queue[0]
			w.queue = w.queue[1:]
			w.mu.Unlock()
			return s, nil
		}
		w.mu.Unlock()
		select {
		case <-w.wake:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// Close detaches the watcher from its Protocol and discards queued
// transitions. A Next blocked in another goroutine returns
// ErrWatcherClosed. Close is idempotent.
func (w *Watcher) Close() {
	w.p.watchMu.Lock()
	for i, x := range w.p.watchers {
		if x == w {
			w.p.watchers = append(w.p.watchers[:i], w.p.watchers[i+1:]...)
			break
		}
	}
	w.p.watchMu.Unlock()
	w.mu.Lock()
	w.closed = true
	w.queue = nil
	w.mu.Unlock()
	w.notify()
}

func (w *Watcher) push(s Runstate) {
	w.mu.Lock()
	if !w.closed {
		w.queue = append(w.queue, s)
	}
	w.mu.Unlock()
	w.notify()
}

func (w *Watcher) notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}
