package qmp

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"

	"github.com/qmpsh/qmpsh/pkg/protocol"
)

type asideKey struct{}

// Aside marks the calls made with the returned context as the program's
// own business, not what its user asked for: fetching the schema it
// checks commands with, say. A trace set with WithAsideTrace is told
// which messages are theirs, to show them shortened. Without a trace it
// changes nothing.
func Aside(ctx context.Context) context.Context {
	return context.WithValue(ctx, asideKey{}, true)
}

func isAside(ctx context.Context) bool { return ctx.Value(asideKey{}) != nil }

// WithAsideTrace is WithTrace, with f also told whether msg is the
// request or the reply of a call made with an Aside context.
func WithAsideTrace(f func(dir protocol.Direction, msg []byte, aside bool)) Option {
	return func(c *config) { c.trace = f }
}

// asideCalls are the ids of the Aside calls whose reply has not been
// traced yet. n spares a trace without any the lock and the search.
type asideCalls struct {
	n   atomic.Int32
	mu  sync.Mutex
	ids map[uint64]struct{}
}

func (a *asideCalls) add(id uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ids == nil {
		a.ids = make(map[uint64]struct{})
	}
	a.ids[id] = struct{}{}
	a.n.Add(1)
}

func (a *asideCalls) remove(id uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.ids[id]; ok {
		delete(a.ids, id)
		a.n.Add(-1)
	}
}

// match reports whether msg is the request or reply of an Aside call; a
// reply ends the call's entry. Only messages that hold such a call's id
// as a string anywhere are decoded, to find their own id.
func (a *asideCalls) match(dir protocol.Direction, msg []byte) bool {
	var candidate uint64
	a.mu.Lock()
	var quoted []byte
	for id := range a.ids {
		quoted = appendID(quoted[:0], id)
		if bytes.Contains(msg, quoted) {
			candidate = id
			break
		}
	}
	a.mu.Unlock()
	if candidate == 0 {
		return false
	}
	var m struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(msg, &m) != nil {
		return false
	}
	if id, ok := parseID(m.ID); !ok || id != candidate {
		return false
	}
	if dir == protocol.Received {
		a.remove(candidate)
	}
	return true
}

// trace is the protocol's trace hook when the client has one.
func (c *Client) trace(dir protocol.Direction, msg []byte) {
	c.cfg.trace(dir, msg, c.aside.n.Load() > 0 && c.aside.match(dir, msg))
}
