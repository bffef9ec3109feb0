package protocol

import (
	"errors"
	"fmt"
	"syscall"
)

// ErrWatcherClosed is returned by Watcher.Next after Watcher.Close.
var ErrWatcherClosed = errors.New("runstate watcher closed")

// ErrClosedByPeer is the cause reported when the peer closes the
// connection cleanly between messages.
var ErrClosedByPeer = errors.New("connection closed by peer")

// peerError is a read's or a write's failure because the peer closed
// the connection, said in the peer's terms, without the socket addresses
// of Go's wording ("read unix @->/path: read: ..."): a reset (the peer
// closed with bytes of ours unread, as QEMU does when it quits with a
// request pending) or a broken pipe (we wrote after it closed). errors.Is
// still finds syscall.ECONNRESET or syscall.EPIPE in it.
type peerError struct {
	msg string
	err error
}

func (e *peerError) Error() string { return e.msg }
func (e *peerError) Unwrap() error { return e.err }

// plainPeerError returns err as a *peerError when the peer reset or
// closed the connection, else err itself.
func plainPeerError(err error) error {
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		return &peerError{"connection reset by peer", err}
	case errors.Is(err, syscall.EPIPE):
		return &peerError{"connection closed by peer: broken pipe", err}
	}
	return err
}

// SessionEndedError is returned by a send that the end of its session
// overtook. Cause is why the session ended, nil for Disconnect.
type SessionEndedError struct {
	Cause error
}

func (e *SessionEndedError) Error() string {
	if e.Cause == nil {
		return "session ended by Disconnect"
	}
	return "session ended: " + e.Cause.Error()
}

// Unwrap returns the cause.
func (e *SessionEndedError) Unwrap() error { return e.Cause }

// StateError is returned when an operation needs the Protocol in a
// runstate other than the one it is in.
type StateError struct {
	Message  string
	State    Runstate // the runstate the Protocol was in
	Required Runstate // the runstate the operation needs
}

func (e *StateError) Error() string { return e.Message }

// ConnectError is returned when a connect or accept fails at the
// transport level. Err is the underlying error; errors.As reaches the
// *net.OpError beneath it.
type ConnectError struct {
	Message string // "failed to establish connection"
	Err     error
}

func (e *ConnectError) Error() string { return e.Message + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *ConnectError) Unwrap() error { return e.Err }

// SocketPathError is an Accept refused because its UNIX socket path is
// taken: by a file that is not a socket, or by a socket that something is
// listening on (a running QEMU's own monitor, say). Only a stale socket,
// left by a process that ended, is replaced.
type SocketPathError struct {
	Path      string
	Listening bool // false: the path is not a socket
}

func (e *SocketPathError) Error() string {
	if e.Listening {
		return "something is listening on " + e.Path + "; refusing to replace it"
	}
	return e.Path + " is not a socket; refusing to replace it"
}

// MessageTooLongError ends a session whose peer sent a message longer than
// the configured limit. The message is discarded as it is read, never
// buffered whole.
type MessageTooLongError struct {
	Limit int
}

func (e *MessageTooLongError) Error() string {
	return fmt.Sprintf("message from peer exceeds the %d-byte limit", e.Limit)
}

// requireIdle returns the StateError for starting a session while in
// state s, or nil when s is Idle. The messages follow qemu.qmp's.
func requireIdle(kind string, s Runstate) error {
	var msg string
	switch s {
	case Idle:
		return nil
	case Connecting:
		msg = kind + " is currently connecting."
	case Running:
		msg = kind + " is already connected and running."
	case Disconnecting:
		msg = kind + " is disconnecting. Call Disconnect() to return to IDLE state."
	}
	return &StateError{Message: msg, State: s, Required: Idle}
}

// requireRunning returns the StateError for sending while in state s.
func requireRunning(kind string, s Runstate) error {
	var msg string
	switch s {
	case Running:
		return nil
	case Idle:
		msg = kind + " is not connected."
	case Connecting:
		msg = kind + " is still connecting."
	case Disconnecting:
		msg = kind + " is disconnecting. Call Disconnect() to return to IDLE state."
	}
	return &StateError{Message: msg, State: s, Required: Running}
}
