package qmp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Match selects events by their data. Each key is a dotted path into the
// event's data ("device", or "info.id" for {"info": {"id": ...}}), and
// its value is what must be found there: a string, number, bool, nil,
// or any value that encodes to JSON, compared as JSON values (numbers by
// value, objects member by member). A value of type OneOf matches any of
// its alternatives. An event matches when every key does; an event
// without data, or without the key, does not. The empty Match matches
// every event.
type Match map[string]any

// OneOf is a Match value that accepts any of several values, such as
// OneOf{"job0", "job1"}, or OneOf{123, "123"} for a value typed without
// knowing whether the member is a number or a string.
type OneOf []any

// Matches reports whether ev's data has every value m asks for. A Match
// that cannot be compiled (see ListenMatch) matches nothing.
func (m Match) Matches(ev Event) bool {
	f, err := m.compile()
	if err != nil {
		return false
	}
	return f.matches(&ev)
}

// ListenMatch is Listen for the named events whose data match m: events
// that do not match are not queued, and do not count towards the
// backlog. It fails, listening to nothing, when a key of m is empty or
// has an empty segment, or a value does not encode to JSON.
func (c *Client) ListenMatch(m Match, names ...string) (*Listener, error) {
	f, err := m.compile()
	if err != nil {
		return nil, err
	}
	return c.listen(f, names), nil
}

// filter is a compiled Match. The nil *filter matches every event.
type filter struct {
	conds []cond
}

type cond struct {
	key  string   // as given, for errors
	path []string // key split at its dots
	want []any    // alternatives, decoded from JSON as the data is
}

func (m Match) compile() (*filter, error) {
	if len(m) == 0 {
		return nil, nil
	}
	f := &filter{conds: make([]cond, 0, len(m))}
	for key, v := range m {
		path := strings.Split(key, ".")
		for _, s := range path {
			if s == "" {
				return nil, fmt.Errorf("match key %q: empty segment", key)
			}
		}
		alts, ok := v.(OneOf)
		if !ok {
			alts = OneOf{v}
		}
		if len(alts) == 0 {
			return nil, fmt.Errorf("match key %q: OneOf without values", key)
		}
		c := cond{key: key, path: path}
		for _, a := range alts {
			b, err := json.Marshal(a)
			if err != nil {
				return nil, fmt.Errorf("match key %q: %w", key, err)
			}
			w, err := decodeJSON(b)
			if err != nil {
				return nil, fmt.Errorf("match key %q: %w", key, err)
			}
			c.want = append(c.want, w)
		}
		f.conds = append(f.conds, c)
	}
	return f, nil
}

// matches runs on the connection's reader goroutine (see push), so it
// decodes an event's data once, and only for a listener that wants the
// event's name.
func (f *filter) matches(ev *Event) bool {
	if f == nil {
		return true
	}
	if ev.Data == nil {
		return false
	}
	data, err := decodeJSON(ev.Data)
	if err != nil {
		return false
	}
	for _, c := range f.conds {
		v, ok := lookup(data, c.path)
		if !ok {
			return false
		}
		found := false
		for _, w := range c.want {
			if jsonEqual(v, w) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// decodeJSON decodes b keeping numbers as written, so that integers
// beyond 2^53 (sizes, offsets) compare exactly.
func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

func lookup(v any, path []string) (any, bool) {
	for _, s := range path {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = obj[s]; !ok {
			return nil, false
		}
	}
	return v, true
}

// jsonEqual compares two values decoded by decodeJSON.
func jsonEqual(a, b any) bool {
	switch a := a.(type) {
	case json.Number:
		b, ok := b.(json.Number)
		return ok && numberEqual(a, b)
	case string:
		b, ok := b.(string)
		return ok && a == b
	case bool:
		b, ok := b.(bool)
		return ok && a == b
	case nil:
		return b == nil
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !jsonEqual(a[i], b[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, av := range a {
			bv, ok := b[k]
			if !ok || !jsonEqual(av, bv) {
				return false
			}
		}
		return true
	}
	return false
}

// numberEqual compares exactly where both are integers (1 and 1.0 are
// equal, 2^63 and 2^63+1 are not), else as floats.
func numberEqual(a, b json.Number) bool {
	if a == b {
		return true
	}
	if x, err := strconv.ParseInt(string(a), 10, 64); err == nil {
		if y, err := strconv.ParseInt(string(b), 10, 64); err == nil {
			return x == y
		}
	}
	if x, err := strconv.ParseUint(string(a), 10, 64); err == nil {
		if y, err := strconv.ParseUint(string(b), 10, 64); err == nil {
			return x == y
		}
	}
	x, errA := strconv.ParseFloat(string(a), 64)
	y, errB := strconv.ParseFloat(string(b), 64)
	return errA == nil && errB == nil && x == y
}
