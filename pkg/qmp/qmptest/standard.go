package qmptest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Standard is a handler that behaves like a small QEMU: it greets (offering
// oob), expects capabilities negotiation, then serves the commands listed
// at Serve until the client leaves.
func Standard(c *Conn) {
	if c.Greet() != nil {
		return
	}
	Serve(c, false)
}

// standardCommands is what query-commands reports; keep it in step with
// session.dispatch.
var standardCommands = []string{
	"cont", "echo", "emit", "qmp_capabilities", "query-commands",
	"query-status", "quit", "sleep", "stop",
}

// Serve runs the standard command loop on a connection that has already
// been greeted, so that a custom handler can greet its own way (or
// misbehave first) and then fall back to standard behaviour. It returns
// when the client leaves, after quit, or when the connection is closed.
// negotiated says whether capabilities negotiation already happened; if
// so, exec-oob is accepted when the greeting offered oob.
//
// The commands are:
//
//   - qmp_capabilities {"enable": [...]}: negotiation, returns {}.
//   - echo: returns its arguments verbatim ({} without arguments).
//   - query-status: {"status": "running", "singlestep": false, "running":
//     true}, or "paused" and false after stop.
//   - stop, cont: emit STOP or RESUME, as QEMU does only when the state
//     changes, then return {}.
//   - emit {"name": "EV", "count": N, "data": any}: emits N events (count
//     defaults to 1) then returns {}, for event floods and benchmarks.
//   - sleep {"ms": N}: returns {} after N milliseconds, answering later
//     requests meanwhile, so replies come out of request order. Real QEMU
//     reorders replies only for out-of-band commands; sleep lets a client's
//     matching of replies by id be tested with plain requests.
//   - quit: emits SHUTDOWN, returns {}, and closes the connection.
//   - query-commands: the list above as [{"name": ...}, ...].
//
// Anything else gets CommandNotFound. Malformed requests get QEMU 7.2's
// error messages. The run state is per connection.
func Serve(c *Conn, negotiated bool) {
	s := &session{c: c, negotiated: negotiated, done: make(chan struct{})}
	s.oob = negotiated && c.offers("oob")
	defer func() {
		close(s.done)
		s.sleepers.Wait()
		c.flush()
	}()
	for {
		req, err := c.ReadRequest()
		if err != nil {
			var me *MalformedError
			if errors.As(err, &me) {
				s.fail(nil, "GenericError", me.Desc)
				continue
			}
			return
		}
		if !s.dispatch(req) {
			return
		}
	}
}

type session struct {
	c          *Conn
	negotiated bool
	oob        bool
	paused     bool

	done     chan struct{} // closed when Serve returns, to cancel sleeps
	sleepers sync.WaitGroup
}

// Replies from the command loop are not flushed here: flushingReader
// flushes them once no further request is buffered.

func (s *session) ok(id json.RawMessage, ret []byte) {
	s.c.write(appendReturn(nil, id, ret), false)
}

func (s *session) fail(id json.RawMessage, class, desc string) {
	s.c.write(appendError(nil, id, class, desc), false)
}

func (s *session) event(name string, data []byte) {
	s.c.write(appendEvent(nil, time.Now(), quote(name), data), false)
}

var empty = []byte("{}")

// check reproduces QEMU's qmp_dispatch_check_obj. Members are visited in
// sorted order because QEMU's order is that of its hash table, which is
// not worth imitating.
func (s *session) check(req *Request) string {
	keys := make([]string, 0, len(req.members))
	for k := range req.members {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := req.members[k]
		switch {
		case k == "execute" || (k == "exec-oob" && s.oob):
			if len(v) == 0 || v[0] != '"' {
				return fmt.Sprintf("QMP input member '%s' must be a string", k)
			}
		case k == "arguments":
			if len(v) == 0 || v[0] != '{' {
				return "QMP input member 'arguments' must be an object"
			}
		case k == "id":
		default:
			return fmt.Sprintf("QMP input member '%s' is unexpected", k)
		}
	}
	_, hasExec := req.members["execute"]
	_, hasOOB := req.members["exec-oob"]
	switch {
	case !hasExec && !(s.oob && hasOOB):
		return "QMP input lacks member 'execute'"
	case hasExec && hasOOB:
		return "QMP input member 'execute' clashes with 'exec-oob'"
	}
	return ""
}

// noArguments rejects arguments for commands that take none, with QEMU's
// message.
func (s *session) noArguments(req *Request) bool {
	if len(req.Arguments) == 0 {
		return true
	}
	var args map[string]json.RawMessage
	json.Unmarshal(req.Arguments, &args)
	if len(args) == 0 {
		return true
	}
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s.fail(req.ID, "GenericError", fmt.Sprintf("Parameter '%s' is unexpected", keys[0]))
	return false
}

// dispatch handles one request and reports whether to keep reading.
func (s *session) dispatch(req *Request) bool {
	id := req.ID
	if problem := s.check(req); problem != "" {
		s.fail(id, "GenericError", problem)
		return true
	}
	cmd := req.Command()
	if !s.negotiated {
		if cmd == "qmp_capabilities" {
			s.capabilities(req)
		} else {
			s.fail(id, "CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'")
		}
		return true
	}
	switch cmd {
	case "qmp_capabilities":
		s.fail(id, "CommandNotFound", "Capabilities negotiation is already complete, command ignored")
	case "echo":
		if req.Arguments == nil {
			s.ok(id, empty)
		} else {
			s.ok(id, req.Arguments)
		}
	case "query-status":
		if s.noArguments(req) {
			if s.paused {
				s.ok(id, []byte(`{"status": "paused", "singlestep": false, "running": false}`))
			} else {
				s.ok(id, []byte(`{"status": "running", "singlestep": false, "running": true}`))
			}
		}
	case "stop":
		if s.noArguments(req) {
			if !s.paused {
				s.paused = true
				s.event("STOP", nil)
			}
			s.ok(id, empty)
		}
	case "cont":
		if s.noArguments(req) {
			if s.paused {
				s.paused = false
				s.event("RESUME", nil)
			}
			s.ok(id, empty)
		}
	case "emit":
		s.emit(req)
	case "sleep":
		s.sleep(req)
	case "quit":
		if s.noArguments(req) {
			s.event("SHUTDOWN", []byte(`{"guest": false, "reason": "host-qmp-quit"}`))
			s.ok(id, empty)
			return false
		}
	case "query-commands":
		if s.noArguments(req) {
			b := []byte{'['}
			for i, name := range standardCommands {
				if i > 0 {
					b = append(b, ", "...)
				}
				b = append(b, `{"name": `...)
				b = append(b, quote(name)...)
				b = append(b, '}')
			}
			s.ok(id, append(b, ']'))
		}
	default:
		s.fail(id, "CommandNotFound", fmt.Sprintf("The command %s has not been found", cmd))
	}
	return true
}

// capabilities negotiates, with the messages QEMU 7.2 gives for bad input.
func (s *session) capabilities(req *Request) {
	id := req.ID
	var args map[string]json.RawMessage
	if req.Arguments != nil {
		json.Unmarshal(req.Arguments, &args)
	}
	keys := make([]string, 0, len(args))
	for k := range args {
		if k != "enable" {
			keys = append(keys, k)
		}
	}
	if len(keys) > 0 {
		sort.Strings(keys)
		s.fail(id, "GenericError", fmt.Sprintf("Parameter '%s' is unexpected", keys[0]))
		return
	}
	var enable []string
	if v, ok := args["enable"]; ok {
		var list []json.RawMessage
		if len(v) == 0 || v[0] != '[' || json.Unmarshal(v, &list) != nil {
			s.fail(id, "GenericError", "Invalid parameter type for 'enable', expected: array")
			return
		}
		for i, item := range list {
			var name string
			if len(item) == 0 || item[0] != '"' || json.Unmarshal(item, &name) != nil {
				s.fail(id, "GenericError", fmt.Sprintf("Invalid parameter type for 'enable[%d]', expected: string", i))
				return
			}
			enable = append(enable, name)
		}
	}
	var unavailable []string
	for _, name := range enable {
		if s.c.offers(name) {
			continue
		}
		if name != "oob" {
			// QEMU 7.2 rejects names outside its capability enum while
			// parsing, and its message really does say 'null'.
			s.fail(id, "GenericError", fmt.Sprintf("Parameter 'null' does not accept value '%s'", name))
			return
		}
		unavailable = append(unavailable, name)
	}
	if len(unavailable) > 0 {
		s.fail(id, "GenericError", fmt.Sprintf("Capability %s not available", strings.Join(unavailable, ", ")))
		return
	}
	s.negotiated = true
	s.oob = slices.Contains(enable, "oob")
	s.ok(id, empty)
}

func (s *session) emit(req *Request) {
	id := req.ID
	var args struct {
		Name  *string         `json:"name"`
		Count *int            `json:"count"`
		Data  json.RawMessage `json:"data"`
	}
	if req.Arguments != nil {
		if err := json.Unmarshal(req.Arguments, &args); err != nil {
			s.fail(id, "GenericError", "Invalid arguments: "+err.Error())
			return
		}
	}
	if args.Name == nil {
		s.fail(id, "GenericError", "Parameter 'name' is missing")
		return
	}
	count := 1
	if args.Count != nil {
		count = *args.Count
	}
	if count < 0 {
		s.fail(id, "GenericError", "Parameter 'count' expects a non-negative integer")
		return
	}
	var data []byte
	if len(args.Data) > 0 && string(args.Data) != "null" {
		data = args.Data
	}
	name := quote(*args.Name)
	// All events go into the buffered writer under one lock, so a flood
	// costs one system call per buffer rather than one per event, and no
	// other writer can interleave.
	c := s.c
	c.wmu.Lock()
	buf := make([]byte, 0, 128+len(data))
	for i := 0; i < count; i++ {
		buf = appendEvent(buf[:0], time.Now(), name, data)
		if _, err := c.w.Write(buf); err != nil {
			break
		}
	}
	c.wmu.Unlock()
	s.ok(id, empty)
}

func (s *session) sleep(req *Request) {
	id := req.ID
	var args struct {
		MS *int64 `json:"ms"`
	}
	if req.Arguments != nil {
		if err := json.Unmarshal(req.Arguments, &args); err != nil {
			s.fail(id, "GenericError", "Invalid arguments: "+err.Error())
			return
		}
	}
	if args.MS == nil {
		s.fail(id, "GenericError", "Parameter 'ms' is missing")
		return
	}
	d := time.Duration(*args.MS) * time.Millisecond
	s.sleepers.Add(1)
	go func() {
		defer s.sleepers.Done()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			// Flushed at once: the command loop may be blocked reading
			// and would not flush it for us.
			s.c.write(appendReturn(nil, id, empty), true)
		case <-s.done:
		}
	}()
}
