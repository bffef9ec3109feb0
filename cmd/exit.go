package cmd

import (
	"context"
	"errors"
	"fmt"

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
  4  timed out`

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

// connectionError names the address in a failure to connect or a lost
// connection, so the message says which VM.
func connectionError(addr string, err error) error {
	var ce *protocol.ConnectError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		err = fmt.Errorf("%s: timed out: %w", addr, err)
	case errors.As(err, &ce):
		err = fmt.Errorf("cannot connect to %s: %w", addr, ce.Err)
	default:
		err = fmt.Errorf("%s: %w", addr, err)
	}
	return &connectionFailure{err}
}
