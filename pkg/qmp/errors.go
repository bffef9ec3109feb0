package qmp

import (
	"errors"
	"fmt"
)

// ExecuteError is a QMP error reply: the command ran (or was rejected by
// QEMU) and the answer is an error of a class such as "CommandNotFound"
// or "GenericError".
type ExecuteError struct {
	Command string // the command name, "" for a raw message
	Class   string
	Desc    string
}

// Error returns "Class: Desc", the form QEMU users know from qmp-shell.
func (e *ExecuteError) Error() string { return e.Class + ": " + e.Desc }

// GreetingError means the server's greeting was missing or malformed.
type GreetingError struct {
	Err error
}

func (e *GreetingError) Error() string { return "QMP greeting: " + e.Err.Error() }

// Unwrap returns the cause.
func (e *GreetingError) Unwrap() error { return e.Err }

// NegotiationError means qmp_capabilities failed.
type NegotiationError struct {
	Err error
}

func (e *NegotiationError) Error() string { return "QMP capabilities negotiation: " + e.Err.Error() }

// Unwrap returns the cause.
func (e *NegotiationError) Unwrap() error { return e.Err }

// ProtocolError means the server sent something QMP does not allow: a
// line that is not a JSON object, a message of no known kind, or a reply
// without an id (QEMU's answer to a request it could not parse). It ends
// the session.
type ProtocolError struct {
	Msg string
}

func (e *ProtocolError) Error() string { return "QMP protocol error: " + e.Msg }

// DisconnectedError fails a call whose session ended before its reply
// arrived. Cause is why the session ended, nil when Disconnect was called.
type DisconnectedError struct {
	Cause error
}

func (e *DisconnectedError) Error() string {
	if e.Cause == nil {
		return "disconnected before the reply arrived"
	}
	return "connection lost before the reply arrived: " + e.Cause.Error()
}

// Unwrap returns the cause.
func (e *DisconnectedError) Unwrap() error { return e.Cause }

// ErrOOBNotNegotiated is returned by ExecuteOOB when the session did not
// enable the "oob" capability.
var ErrOOBNotNegotiated = errors.New("out-of-band execution was not negotiated with the server")

func protocolErrorf(format string, args ...any) error {
	return &ProtocolError{Msg: fmt.Sprintf(format, args...)}
}
