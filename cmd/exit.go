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
	ExitQMPError   = 1 // QEMU answered with an error (or a shell command failed)
	ExitUsage      = 2 // usage or syntax error; nothing was sent
	ExitConnection = 3 // cannot connect, connection lost, or protocol error
	ExitTimeout    = 4 // --timeout (or --wait-timeout) expired
)

const exitStatusHelp = `Exit status:
  0  success
  1  QEMU answered with an error (its class and description on stderr)
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
// chain is a timeout, whatever else happened.
func exitCode(err error) int {
	var xe *ExitError
	var ee *qmp.ExecuteError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, context.DeadlineExceeded):
		return ExitTimeout
	case errors.As(err, &xe):
		return xe.Code
	case errors.As(err, &ee), errors.Is(err, shell.ErrCommandFailed):
		return ExitQMPError
	}
	return ExitConnection
}

// connectionError names the address in a failure to connect or a lost
// connection, so the message says which VM.
func connectionError(addr string, err error) error {
	var ce *protocol.ConnectError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: timed out: %w", addr, err)
	case errors.As(err, &ce):
		return fmt.Errorf("cannot connect to %s: %w", addr, ce.Err)
	}
	return fmt.Errorf("%s: %w", addr, err)
}
