package cmd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/qmpsh/qmpsh/pkg/ga"
	"github.com/qmpsh/qmpsh/pkg/protocol"
	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/shell"
)

// Exit statuses, documented in --help and the README.
const (
	ExitOK         = 0 // success
	ExitQMPError   = 1 // QEMU answered with an error (or a shell command failed, or another failure)
	ExitUsage      = 2 // usage or syntax error; nothing was sent
	ExitConnection = 3 // cannot connect, connection lost, or protocol error
	ExitTimeout    = 4 // --timeout (or --wait-timeout) expired
)

const exitStatusHelp = `Exit status:
  0  success
  1  QEMU answered with an error (its class and description on stderr),
     or another failure (the message says which)
  2  usage or syntax error (nothing was sent)
  3  cannot connect, connection lost, or protocol error
  4  timed out
  130  Ctrl-C stopped a wait (job, migration, accept, wrap's for QEMU)
     or ga cp or ga run
  141  standard output was closed (| head)`

// ExitError carries the exit status a failure maps to.
type ExitError struct {
	Code int
	Err  error
	// Syntax marks a usage error in the QMP command line rather than in
	// qmpsh's own flags: no pointer to --help follows it.
	Syntax bool
	// quiet: the failure was reported already (fan-out's JSON lines).
	quiet bool
}

func (e *ExitError) Error() string { return e.Err.Error() }

// Unwrap returns the error.
func (e *ExitError) Unwrap() error { return e.Err }

func usageErrorf(format string, args ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf(format, args...)}
}

// exitCode maps an error to the exit status. A deadline anywhere in the
// chain is a timeout, whatever else happened. An error cobra found before
// any command ran is a usage error; one a command returned that is none
// of the kinds below is a plain failure (1), never "connection": scripts
// retry on 3, and retrying a local failure does not help.
func exitCode(err error) int {
	var xe *ExitError
	var ee *qmp.ExecuteError
	var cf *connectionFailure
	var re *runError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, context.DeadlineExceeded):
		return ExitTimeout
	case errors.As(err, &xe):
		return xe.Code
	case errors.As(err, &ee), errors.Is(err, shell.ErrCommandFailed):
		return ExitQMPError
	case errors.As(err, &cf):
		return ExitConnection
	case !errors.As(err, &re):
		return ExitUsage
	}
	return ExitQMPError
}

// connectionFailure is an error connectionError made: connecting failed
// or the connection was lost.
type connectionFailure struct{ error }

func (e *connectionFailure) Unwrap() error { return e.error }

// busyHint is what to do when a monitor serves someone else: a monitor
// of its own, or qmpsh proxy, which shares one among many clients.
const busyHint = "another client may be connected to this monitor (QEMU serves one at a time): " +
	"give qmpsh its own -qmp (or -mon) socket, or share this one through qmpsh proxy; " +
	"or it is a guest agent's socket, which never greets: use qmpsh ga"

// gaBusyHint is busyHint for a guest agent, which the proxy cannot share.
const gaBusyHint = "another client may be connected to this guest agent (it serves one at a time): " +
	"end that client, or wait for it to leave"

// proxyBusyHint is busyHint for the proxy itself, which cannot share a
// monitor it does not have.
const proxyBusyHint = "another client may be connected to this monitor (QEMU serves one at a time), " +
	"and the proxy needs it to itself: end that client, or give the proxy a -qmp (or -mon) socket of its own"

// connectionError names the address in a failure to connect or a lost
// connection, so the message says which VM, and says what a person can
// do about it, in words of its own rather than Go's.
func connectionError(addr string, err error) error {
	return connectionErrorHint(addr, err, busyHint)
}

// connectionErrorHint is connectionError with busy as the hint for a
// monitor that serves someone else.
func connectionErrorHint(addr string, err error, busy string) error {
	var ce *protocol.ConnectError
	var te *qmp.TimeoutError
	var pe *protocol.SocketPathError
	var ge *qmp.GreetingError
	var ie *shell.InputError
	var ne *net.OpError
	switch {
	case errors.As(err, &ie):
		// The shell's input failed, not the connection: retrying the
		// connection (what scripts do on 3) would not help.
		return &ExitError{Code: ExitQMPError, Err: err}
	case errors.As(err, &pe):
		// The user named a path that is not free: nothing was sent.
		return &ExitError{Code: ExitUsage, Err: fmt.Errorf("cannot listen on %s: %w", addr, pe), Syntax: true}
	case errors.As(err, &ne) && ne.Op == "listen":
		// Nor where one cannot listen (no such directory, a port in
		// use): the address given must change, as the proxy says too.
		return &ExitError{Code: ExitUsage, Err: &wrapped{connectFailure(addr, ne, busy), err}, Syntax: true}
	case errors.As(err, &te):
		msg := addr + ": " + te.Error()
		if errors.As(err, &ge) {
			// The socket took the connection but QEMU said nothing:
			// it is busy with another client.
			msg += "; " + busy
			if a, perr := protocol.ParseAddress(addr); perr == nil && a.Network == "tcp" && !a.TLS {
				// Or it is a TLS monitor, waiting for our handshake
				// as we wait for its greeting.
				msg += "; or it expects TLS: dial tls:HOST:PORT"
			}
		}
		err = &wrapped{msg, err}
	case errors.Is(err, context.DeadlineExceeded):
		err = &wrapped{addr + ": timed out " + waitingFor(err), err}
	case errors.As(err, &ce):
		err = &wrapped{connectFailure(addr, ce.Err, busy), ce.Err}
	case errors.As(err, &ge) && isTLSAddress(addr):
		err = &wrapped{addr + ": " + err.Error() + "; " + tlsRefusedHint, err}
	default:
		err = fmt.Errorf("%s: %w", addr, err)
	}
	return &connectionFailure{err}
}

// timedOutAfter says that a deadline in err was d's, the bound qmpsh put
// on that wait; other errors are returned as they are.
func timedOutAfter(err error, d time.Duration) error {
	var te *qmp.TimeoutError
	var na *ga.NoAnswerError
	switch {
	case errors.As(err, &te):
		// The client measured from its own start, a moment after the
		// bound was set: say the bound itself (under a millisecond,
		// the moment is most of it).
		te.After = d
		return err
	case errors.As(err, &na):
		na.After = d
		return err
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &qmp.TimeoutError{Doing: waitingFor(err), After: d, Err: err}
}

// waitingFor says what a deadline interrupted, from the error's own
// words without Go's "context deadline exceeded".
func waitingFor(err error) string {
	s := strings.TrimSuffix(err.Error(), context.DeadlineExceeded.Error())
	s = strings.TrimSuffix(s, ": ")
	if s == "" || s == err.Error() {
		return "waiting for the reply"
	}
	return s
}

// connectFailure describes a failed dial or listen at addr; busy is the
// hint for a monitor that serves someone else.
func connectFailure(addr string, err error, busy string) string {
	var ne *net.OpError
	if errors.As(err, &ne) && ne.Op == "listen" {
		return fmt.Sprintf("cannot listen on %s: %v", addr, ne.Err)
	}
	switch {
	case errors.Is(err, syscall.EAGAIN):
		// A UNIX socket's backlog is full: its server accepts no one.
		return fmt.Sprintf("cannot connect to %s: clients are queued on it already; %s", addr, busy)
	case errors.Is(err, syscall.ECONNREFUSED):
		if a, perr := protocol.ParseAddress(addr); perr == nil && a.Network == "unix" {
			if fi, serr := os.Stat(a.Addr); serr == nil && fi.Mode()&os.ModeSocket == 0 {
				return fmt.Sprintf("cannot connect to %s: %s is not a socket", addr, a.Addr)
			}
		}
	}
	return fmt.Sprintf("cannot connect to %s: %v", addr, dialCause(err)) + tlsHint(err)
}

// dialCause is what went wrong in a failed dial, without Go's account of
// the call ("dial unix /x.sock: connect: "), which repeats the address
// the message names already: "no such file or directory".
func dialCause(err error) error {
	var ne *net.OpError
	if !errors.As(err, &ne) || ne.Op != "dial" {
		return err
	}
	err = ne.Err
	var se *os.SyscallError
	if errors.As(err, &se) {
		err = se.Err
	}
	return err
}

// wrapped is an error with a message of its own over a cause that
// errors.Is and errors.As still reach.
type wrapped struct {
	msg string
	err error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.err }
