package qmp

import (
	"errors"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/protocol"
)

// TestSendOvertakenIsNotSent: a send that the session's end overtook
// wrote nothing, so its error must say "not sent", not that QEMU may
// have run the command. The end can overtake a send only in a window no
// test can hold open (between the session's end and its leaving
// Running, or while the send waits on a full queue), so this feeds the
// protocol's error to the mapping roundTrip uses.
func TestSendOvertakenIsNotSent(t *testing.T) {
	cause := errors.New("connection closed by peer")
	c := NewClient()
	err := c.sendFailed(&protocol.SessionEndedError{Cause: cause})
	var de *DisconnectedError
	if !errors.As(err, &de) || !de.NotSent || !errors.Is(err, cause) ||
		err.Error() != "not sent: connection lost: connection closed by peer" {
		t.Fatalf("sendFailed = %v (%#v); want a not-sent DisconnectedError with the cause", err, err)
	}
	// A client still connecting, or disconnecting, that never had a
	// session says so; once a session has ended, the call was made for
	// it, and was not sent.
	connecting := &protocol.StateError{Message: "QMPClient is still connecting.", State: protocol.Connecting}
	if err := c.sendFailed(connecting); err != connecting {
		t.Fatalf("sendFailed(connecting) with no session ever = %v; want the StateError", err)
	}
	c.ended(nil)
	if err := c.sendFailed(connecting); !errors.As(err, &de) || !de.NotSent {
		t.Fatalf("sendFailed(connecting) after a session = %v; want a not-sent DisconnectedError", err)
	}
	idle := &protocol.StateError{Message: "QMPClient is not connected.", State: protocol.Idle}
	if err := c.sendFailed(idle); err != idle {
		t.Fatalf("sendFailed(idle) = %v; want the StateError", err)
	}
	// Any other failure (a bad descriptor to pass, ctx) is its own.
	other := errors.New("passing file descriptors needs a UNIX socket connection, not tcp")
	if err := c.sendFailed(other); err != other {
		t.Fatalf("sendFailed(other) = %v", err)
	}
}
