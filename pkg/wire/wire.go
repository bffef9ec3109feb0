// Package wire holds what the QMP client (pkg/qmp) and the guest agent
// client (pkg/ga) share of the wire format they both speak: the error
// reply, the error of a call whose session ended first, how a timeout's
// bound is said, which JSON QEMU's parser takes (QEMURefuses, which
// the proxy and the shell use too), and how a request's id is chosen
// (NextID, which the proxy uses too). Each client keeps its own request encoding and reply routing,
// since QMP's greeting, events and out-of-band ids and the agent's
// sentinel byte make them differ.
package wire

import "time"

// ExecuteError is an error reply: the command ran (or was rejected) and
// the answer is an error of a class such as "CommandNotFound" or
// "GenericError". pkg/qmp calls it qmp.ExecuteError.
type ExecuteError struct {
	Command string // the command name, "" for a raw message
	Class   string
	Desc    string
	// Sent is the reply's "error" member as the server sent it
	// (compacted, shortened if long), kept when it lacks a class or a
	// description, which QEMU always gives; "" otherwise.
	Sent string
}

// Error returns "Class: Desc", the form QEMU users know from qmp-shell.
// An error without a class or a description says so, and shows what the
// server sent, rather than ": ".
func (e *ExecuteError) Error() string {
	if e.Class != "" && e.Desc != "" {
		return e.Class + ": " + e.Desc
	}
	missing := "a class or a description"
	switch {
	case e.Class != "":
		missing = "a description"
	case e.Desc != "":
		missing = "a class"
	}
	s := "the server answered with an error without " + missing
	if e.Command != "" {
		s = "the server answered " + e.Command + " with an error without " + missing
	}
	s += " (not QMP as QEMU speaks it)"
	if e.Sent != "" {
		s += ": " + e.Sent
	}
	return s
}

// DisconnectedError fails a call whose session ended before its reply
// arrived. Cause is why the session ended, nil when Disconnect was called.
// pkg/qmp and pkg/ga call it qmp.DisconnectedError and ga.DisconnectedError.
type DisconnectedError struct {
	Cause error
	// NotSent says the session ended before any of the request was
	// written: the peer cannot have run it. Without it the request was
	// sent (or may have been), and the peer may have run it.
	NotSent bool
}

func (e *DisconnectedError) Error() string {
	switch {
	case e.NotSent && e.Cause == nil:
		return "not sent: disconnected"
	case e.NotSent:
		return "not sent: connection lost: " + e.Cause.Error()
	case e.Cause == nil:
		return "disconnected before the reply arrived"
	}
	return "connection lost before the reply arrived: " + e.Cause.Error()
}

// Unwrap returns the cause.
func (e *DisconnectedError) Unwrap() error { return e.Cause }

// RoundBound gives back the bound a caller set from d, the time from a
// call's start to its deadline: the deadline was set a moment before the
// call started, so d falls a little short, and rounding up to a grain
// that suits its size says 10s, not 9.9997s. The grains change a tenth
// below 100 ms and 1 s, so that a bound of 100 ms reached a few
// milliseconds late (a loaded machine) still reads 100ms, not 98ms.
func RoundBound(d time.Duration) time.Duration {
	g := time.Millisecond
	switch {
	case d >= 900*time.Millisecond:
		g = 100 * time.Millisecond
	case d >= 90*time.Millisecond:
		g = 10 * time.Millisecond
	}
	return (d + g - 1).Truncate(g)
}

// NextID returns a request id that no key of pending has, so that no
// reply can be taken for another request's: the one after *last (which
// it updates) in a cycle through 1..9 while fewer than 9 requests are
// pending (one digit), 1..99 while fewer than 99, and so on. Short ids
// matter against QEMU, which reads its monitor a byte at a time: an id
// is parsed and echoed, and its length is most of what it costs. (Key 0
// is the request sent without an id; see the QMP client and the proxy.)
func NextID[V any](pending map[uint64]V, last *uint64) uint64 {
	limit := uint64(9)
	for uint64(len(pending)) >= limit {
		limit = limit*10 + 9
	}
	for {
		*last++
		if *last > limit {
			*last = 1
		}
		if _, busy := pending[*last]; !busy {
			return *last
		}
	}
}

// TakesFiles says whether QEMU's command takes the descriptors passed
// with its request (SCM_RIGHTS): QEMU hands it whatever descriptors the
// monitor holds, so such requests must reach it one at a time, whoever
// sends them (the QMP client's files slot, the proxy's files call).
func TakesFiles(command string) bool { return command == "getfd" || command == "add-fd" }
