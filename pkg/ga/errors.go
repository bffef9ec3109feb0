package ga

import (
	"errors"
	"fmt"
	"time"

	"github.com/qmpsh/qmpsh/pkg/wire"
)

// NoAnswerError is a call, or the synchronisation on connect, that the
// agent did not answer before its context's deadline: the agent may not
// be running yet (a guest still booting), or hung. It unwraps to the
// context's error, so errors.Is(err, context.DeadlineExceeded) holds.
type NoAnswerError struct {
	Doing string        // "synchronising (guest-sync-delimited)", "waiting for the reply to guest-exec"
	After time.Duration // how long the call allowed, 0 when unknown
	Err   error
}

func (e *NoAnswerError) Error() string {
	s := "the guest agent did not answer"
	if e.After > 0 {
		s += fmt.Sprintf(" within %v", e.After)
	}
	return s + " " + e.Doing + "; is qemu-ga running in the guest?"
}

// Unwrap returns the context's error.
func (e *NoAnswerError) Unwrap() error { return e.Err }

// ErrMonitor is returned by Connect when the peer greets as a QEMU
// monitor does ({"QMP": ...}): the address is a QMP monitor's, not a
// guest agent's, which sends no greeting.
var ErrMonitor = errors.New("this is a QEMU monitor (it greeted with QMP), not a guest agent")

// DisconnectedError fails a call whose session ended before its reply
// arrived. Cause is why the session ended, nil when Disconnect was called.
// It is the same type for the QMP client (pkg/qmp), so that callers handle both alike.
type DisconnectedError = wire.DisconnectedError

// ProtocolError is a reply the client cannot make sense of: not JSON, or
// a return value of the wrong shape for the command.
type ProtocolError struct {
	Msg string
}

func (e *ProtocolError) Error() string { return "guest agent protocol error: " + e.Msg }

// RequestTooLargeError is a request longer than the agent takes
// (MaxRequestSize): the client did not send it.
type RequestTooLargeError struct {
	Command string
	Size    int // the request's length, encoded
}

func (e *RequestTooLargeError) Error() string {
	return fmt.Sprintf("a %s request of %d bytes is longer than the guest agent takes (%d bytes); it was not sent",
		e.Command, e.Size, MaxRequestSize)
}
