package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
)

// signalReceived is the cause of a signalContext's end: sig arrived.
type signalReceived struct{ sig os.Signal }

func (e *signalReceived) Error() string { return fmt.Sprintf("%v signal received", e.sig) }

// interruptedExit is interrupted for a command whose interruption is an
// exit status of its own, as a shell reports a command a signal killed:
// 128+N for signal N (130 for Ctrl-C). Other errors are returned as they
// are.
func interruptedExit(ctx context.Context, err error, doing string) error {
	var sr *signalReceived
	if !errors.Is(err, context.Canceled) || !errors.As(context.Cause(ctx), &sr) {
		return err
	}
	return &ExitError{Code: signalStatus(ctx), Err: interrupted(ctx, err, doing)}
}

// signalStatus is the exit status for the signal that ended ctx, a
// signalContext's: 128+N for signal N, 130 (Ctrl-C) when it is not known.
func signalStatus(ctx context.Context) int {
	var sr *signalReceived
	if errors.As(context.Cause(ctx), &sr) {
		if n, ok := sr.sig.(syscall.Signal); ok {
			return 128 + int(n)
		}
	}
	return ExitInterrupted
}

// stopSignals end a wait that has no natural bound (accept waiting for
// QEMU, job wait): Ctrl-C from a person, SIGTERM from a service manager
// or kill, SIGHUP from a closed terminal. Caught, they let the wait clean
// up its socket, which dying by the signal would leave behind, or say
// how it ended (job wait's last line).
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}

// interrupted names the signal that ended a wait under untilStopped's
// ctx, doing says what was going on; other errors are returned as they
// are.
func interrupted(ctx context.Context, err error, doing string) error {
	cause := context.Cause(ctx)
	// A plain cancel's cause is context.Canceled itself; a signal's is
	// its own error (which errors.Is also counts as Canceled).
	if !errors.Is(err, context.Canceled) || cause == nil || cause == context.Canceled {
		return err
	}
	// NotifyContext's cause reads "terminated signal received".
	return &wrapped{fmt.Sprintf("interrupted while %s (%v)", doing, cause), err}
}
