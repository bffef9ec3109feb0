package shell

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qmpsh/qmpsh/pkg/protocol"
)

// Delays between reconnection attempts: the first retry comes soon (QEMU
// restarting takes a moment), then they back off so that a QEMU that is
// gone for good is not hammered.
const (
	ReconnectMinDelay = 100 * time.Millisecond
	ReconnectMaxDelay = 5 * time.Second
)

// redialState is what the redialer tells the rest of the shell.
type redialState struct {
	down atomic.Bool // the connection is lost and being redialled

	mu       sync.Mutex
	lostBy   error // why the connection was lost
	attempts int
	lastErr  error // the last attempt's
}

func (r *redialState) cause() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lostBy
}

// status describes the redialling for a refused command.
func (r *redialState) status() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.attempts == 0 {
		return "lost: " + errString(r.lostBy)
	}
	attempts := "attempts"
	if r.attempts == 1 {
		attempts = "attempt"
	}
	return fmt.Sprintf("%d %s so far, the last: %v", r.attempts, attempts, r.lastErr)
}

func errString(err error) string {
	if err == nil {
		return "disconnected"
	}
	return err.Error()
}

// startRedialer starts the goroutine that notices a lost connection and
// redials it with Config.Reconnect; the returned function stops it.
func (sh *shell) startRedialer(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Only this goroutine connects again, so the session it waits
		// on has ended once the runstate leaves RUNNING.
		for sh.Client.WaitForStateChange(ctx, protocol.Running) && sh.redialOnce(ctx) {
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// redialOnce reports the loss, redials until it succeeds, and reports the
// return; false when ctx ends first.
func (sh *shell) redialOnce(ctx context.Context) bool {
	cause := sh.Client.Disconnect() // back to Idle, with why it ended
	sh.redial.mu.Lock()
	sh.redial.lostBy, sh.redial.attempts, sh.redial.lastErr = cause, 0, nil
	sh.redial.mu.Unlock()
	sh.setDown(true)
	sh.flushEvents()
	sh.lateNotice(fmt.Sprintf("connection lost: %s; reconnecting", errString(cause)))

	delay := ReconnectMinDelay
	for {
		err := sh.Reconnect(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return false
		}
		sh.Client.Disconnect() // a failed attempt may leave a half-done session
		sh.redial.mu.Lock()
		sh.redial.attempts++
		sh.redial.lastErr = err
		sh.redial.mu.Unlock()
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
		delay = min(2*delay, ReconnectMaxDelay)
	}
	sh.Completer.Reset()
	version := ""
	if g := sh.Client.Greeting(); g != nil {
		version = " " + g.Version.String()
	}
	sh.setDown(false)
	sh.notice("reconnected to QEMU" + version)
	return true
}

func (sh *shell) setDown(down bool) {
	sh.promptMu.Lock()
	defer sh.promptMu.Unlock()
	sh.redial.down.Store(down)
	sh.applyPrompt()
}
