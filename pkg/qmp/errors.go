package qmp

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/qmpsh/qmpsh/pkg/wire"
)

// ExecuteError is a QMP error reply: the command ran (or was rejected by
// QEMU) and the answer is an error of a class such as "CommandNotFound"
// or "GenericError". It is the guest agent client's error reply too
// (pkg/ga), so that callers handle both alike.
type ExecuteError = wire.ExecuteError

// GreetingError means the server's greeting was missing or malformed.
type GreetingError struct {
	Err error
}

func (e *GreetingError) Error() string { return "QMP greeting: " + e.Err.Error() }

// Unwrap returns the cause.
func (e *GreetingError) Unwrap() error { return e.Err }

// ErrProbed is a GreetingError's cause when Accept's peer was not QEMU but
// another qmpsh, which found the socket live and said so (protocol.Probe)
// instead of taking its path over.
var ErrProbed = errors.New("another qmpsh checked whether this socket is live")

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
// It is the same type for the guest agent client (pkg/ga), so that callers handle both alike.
type DisconnectedError = wire.DisconnectedError

// ErrOOBNotNegotiated is returned by ExecuteOOB when the session did not
// enable the "oob" capability.
var ErrOOBNotNegotiated = errors.New("out-of-band execution was not negotiated with the server")

func protocolErrorf(format string, args ...any) error {
	return &ProtocolError{Msg: fmt.Sprintf(format, args...)}
}

// TimeoutError is a Connect, Accept or ConnectConn whose context's
// deadline passed. It unwraps to what was interrupted (a *GreetingError,
// a *NegotiationError, or context.DeadlineExceeded itself), so
// errors.Is(err, context.DeadlineExceeded) holds.
type TimeoutError struct {
	Doing string        // "waiting for the QMP greeting", "connecting", ...
	After time.Duration // how long ctx allowed, rounded
	Err   error
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("timed out after %v %s", e.After, e.Doing)
}

// Unwrap returns what timed out.
func (e *TimeoutError) Unwrap() error { return e.Err }

// connectTimeout turns a deadline that ended a connect begun at start into
// a *TimeoutError that says which step it interrupted and after how long.
// Other errors are returned as they are.
func connectTimeout(ctx context.Context, start time.Time, accepting bool, err error) error {
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var ge *GreetingError
	var ne *NegotiationError
	doing := "connecting"
	switch {
	case errors.As(err, &ge):
		doing = "waiting for the QMP greeting"
	case errors.As(err, &ne):
		doing = "waiting for the reply to qmp_capabilities"
	case accepting:
		doing = "waiting for a connection"
	}
	// The deadline, not the clock now: a late timer must not change the
	// message.
	d := time.Since(start)
	if dl, ok := ctx.Deadline(); ok {
		d = dl.Sub(start)
	}
	return &TimeoutError{Doing: doing, After: wire.RoundBound(d), Err: err}
}

// truncate is what came from the peer, for a message, cut after n bytes
// with "..." to say so. Printable text (JSON, as a rule) is shown as it
// is; anything else (binary, terminal escapes, invalid UTF-8) is quoted
// as a Go string literal, so that it is shown rather than sent to the
// terminal.
func truncate(b []byte, n int) string {
	cut, more := b, ""
	if len(b) > n {
		cut, more = b[:n], "..."
		// Do not split a UTF-8 sequence: half a rune is not text.
		for i := 0; i < utf8.UTFMax-1 && len(cut) > 0 && !utf8.Valid(cut); i++ {
			cut = cut[:len(cut)-1]
		}
		if !utf8.Valid(cut) { // not text anyway: cut at n
			cut = b[:n]
		}
	}
	s := string(cut)
	if !printable(s) {
		return strconv.Quote(s) + more
	}
	return s + more
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !strconv.IsPrint(r) {
			return false
		}
	}
	return true
}
