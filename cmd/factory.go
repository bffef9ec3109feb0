package cmd

import (
	"context"
	"os"
	"os/signal"
	"sync"

	"github.com/qmpsh/qmpsh/pkg/ga"
	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/shell"
)

// Factory is what every command takes from the process it runs in: the
// standard streams, the environment, signals, and how to make a client.
// Main builds the real one with NewFactory; tests build their own, so a
// command's run function never reads os.Stdout, os.Getenv or the signal
// table.
type Factory struct {
	IO *IOStreams
	// Getenv reads the environment: QMP_SOCKET, XDG_RUNTIME_DIR,
	// XDG_STATE_HOME, QMPSH_TLS_*.
	Getenv func(key string) string
	// LookupEnv reads the environment where unset and empty differ
	// (PAGER); nil: Getenv, with empty as unset.
	LookupEnv func(key string) (string, bool)
	// Signals delivers sigs to c until stop is called: signal.Notify
	// and signal.Stop.
	Signals func(c chan<- os.Signal, sigs ...os.Signal) (stop func())
	// NewClient makes an unconnected QMP client.
	NewClient func(opts ...qmp.Option) *qmp.Client
	// NewGAClient makes an unconnected guest agent client; nil:
	// ga.NewClient.
	NewGAClient func(opts ...ga.Option) *ga.Client

	// outputs are the run's checked outputs (see Execute); nil outside
	// Execute, where nothing is checked.
	outputs *outputs
}

// NewFactory returns the factory of the running process, with streams
// ios.
func NewFactory(ios *IOStreams) *Factory {
	return &Factory{
		IO:        ios,
		Getenv:    os.Getenv,
		LookupEnv: os.LookupEnv,
		Signals: func(c chan<- os.Signal, sigs ...os.Signal) func() {
			signal.Notify(c, sigs...)
			return func() { signal.Stop(c) }
		},
		NewClient:   qmp.NewClient,
		NewGAClient: ga.NewClient,
	}
}

// signalContext is signal.NotifyContext on f.Signals: ctx, cancelled
// when one of sigs arrives. stop unsubscribes, so that the next such
// signal acts as it normally would; it is safe to call more than once.
func (f *Factory) signalContext(ctx context.Context, sigs ...os.Signal) (_ context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	c := make(chan os.Signal, 1)
	unsubscribe := f.Signals(c, sigs...)
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case sig := <-c:
			// The signal is the cause, so that interrupted can name it.
			cancel(&signalReceived{sig})
		case <-ctx.Done():
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			unsubscribe()
			cancel(nil)
		})
		<-done
	}
}

// interrupts is the terminal editor's source of Ctrl-C outside a line
// being read: SIGINT.
func (f *Factory) interrupts() shell.InterruptSource {
	return func(c chan<- os.Signal) func() { return f.Signals(c, os.Interrupt) }
}
