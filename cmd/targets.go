package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"

	"github.com/qmpsh/qmpsh/pkg/protocol"
	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/shell"
)

// DefaultParallel bounds how many targets exec and events talk to at
// once: enough to hide each VM's round trip, few enough to stay far below
// the open-files limit.
const DefaultParallel = 32

// targets resolves -s flags (or $QMP_SOCKET, as getenv reads it) into
// addresses. Patterns
// with shell glob characters are expanded against the file system,
// sorted; a pattern that matches nothing is a usage error. fanout is set
// when the output must name each target: more than one -s, or a glob.
func targets(getenv func(string) string, sockets []string) (addrs []string, fanout bool, err error) {
	if len(sockets) == 0 {
		addr, err := address(getenv, "", "-s ADDR")
		if err != nil {
			return nil, false, err
		}
		sockets = []string{addr}
	}
	fanout = len(sockets) > 1
	// One server named twice (X and unix:X, ./X and X, or two globs
	// that overlap) is one target: the command must not run twice.
	seen := map[string]bool{}
	add := func(a string) {
		if k := targetKey(a); !seen[k] {
			seen[k] = true
			addrs = append(addrs, a)
		}
	}
	for _, s := range sockets {
		path, prefixed := strings.CutPrefix(s, "unix:")
		// Only a UNIX path globs: [::1]:4444 is a TCP address.
		if a, err := protocol.ParseAddress(s); err != nil || a.Network != "unix" || !strings.ContainsAny(path, "*?[") {
			add(s)
			continue
		}
		fanout = true
		matches, err := filepath.Glob(path)
		if err != nil {
			return nil, false, usageErrorf("-s %s: %v", s, err)
		}
		if len(matches) == 0 {
			return nil, false, usageErrorf("-s %s: no socket matches", s)
		}
		for _, m := range matches {
			if prefixed {
				m = "unix:" + m
			}
			add(m)
		}
	}
	return addrs, fanout, nil
}

// targetKey is what two spellings of one address have in common: the
// network and, for a UNIX socket, its absolute path.
func targetKey(addr string) string {
	a, err := protocol.ParseAddress(addr)
	if err != nil {
		return addr
	}
	if a.Network == "unix" {
		if abs, err := filepath.Abs(a.Addr); err == nil {
			a.Addr = abs
		}
	}
	return a.String()
}

// outcome is what happened at one target: a JSON line's fields beyond
// "target", and the exit status it maps to.
type outcome struct {
	Return json.RawMessage `json:"return,omitempty"`
	Event  json.RawMessage `json:"event,omitempty"`
	Error  *errorObject    `json:"error,omitempty"`
	code   int
}

// errorObject is a target's failure in a JSON line: QEMU's class and
// description for an error reply; for qmpsh's own failures a class of
// ConnectionError, Timeout or UsageError (InternalError for a failure of
// no known kind).
type errorObject struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

func failed(err error) outcome {
	var ee *qmp.ExecuteError
	// err comes from a running command, as RunE's do.
	o := outcome{code: exitCode(&runError{err}), Error: &errorObject{Desc: err.Error()}}
	switch {
	case errors.As(err, &ee):
		o.Error.Class = ee.Class
	case o.code == ExitTimeout:
		o.Error.Class = "Timeout"
	case o.code == ExitUsage:
		o.Error.Class = "UsageError"
	case o.code == ExitQMPError: // a failure of no known kind
		o.Error.Class = "InternalError"
	default:
		o.Error.Class = "ConnectionError"
	}
	if errors.As(err, &ee) {
		// The hint, if any, is part of the description.
		o.Error.Desc = strings.TrimPrefix(err.Error(), ee.Class+": ")
	}
	return o
}

// fanOut runs do for every address, at most parallel at once, and prints
// one JSON line per target, {"target": ADDR, ...}, as each finishes. The
// exit status is the worst (highest) of the targets'.
func fanOut(ctx context.Context, out io.Writer, addrs []string, parallel int, do func(ctx context.Context, addr string) outcome) error {
	if parallel < 1 {
		parallel = 1
	}
	var (
		mu    sync.Mutex
		worst int
		wg    sync.WaitGroup
	)
	sem := make(chan struct{}, parallel)
	for _, addr := range addrs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			o := do(ctx, addr)
			line, err := json.Marshal(struct {
				Target string `json:"target"`
				outcome
			}{addr, o})
			if err != nil { // a RawMessage that is not JSON: a bug
				line, _ = json.Marshal(map[string]any{"target": addr, "error": errorObject{"InternalError", err.Error()}})
				o.code = ExitConnection
			}
			mu.Lock()
			defer mu.Unlock()
			out.Write(append(shell.ValidUTF8(line), '\n'))
			worst = max(worst, o.code)
		}()
	}
	wg.Wait()
	if worst != ExitOK {
		return &ExitError{Code: worst, Err: errFannedOut, quiet: true}
	}
	return nil
}

// errFannedOut is fan-out's error: each target's is on its own line.
var errFannedOut = errors.New("some targets failed")

// waitEvent returns the next event from l, or an error when ctx ends
// (a deadline is a timeout) or the session ends first, which says it was
// waiting for what (events, event SHUTDOWN). Events that arrived before
// the end are still returned.
func waitEvent(ctx context.Context, client *qmp.Client, l *qmp.Listener, what string) (qmp.Event, error) {
	for {
		// The events that came before the session ended have arrived
		// by the time its runstate leaves RUNNING.
		state, changed := client.RunstateChanged()
		if state != protocol.Running {
			if ev, ok := l.Take(); ok {
				return ev, nil
			}
			cause := client.Err()
			if cause == nil {
				cause = errors.New("disconnected")
			}
			return qmp.Event{}, fmt.Errorf("connection lost while waiting for %s: %w", what, cause)
		}
		select {
		case ev := <-l.Events():
			return ev, nil
		case <-changed:
		case <-ctx.Done():
			// select picks at random among ready cases: an event that
			// came with the deadline still counts.
			if ev, ok := l.Take(); ok {
				return ev, nil
			}
			return qmp.Event{}, fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		}
	}
}
