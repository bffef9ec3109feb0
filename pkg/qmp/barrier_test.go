package qmp

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// A call registered under one session whose request had not gone when
// the session ended must not be sent on the next one: ids start afresh
// with each session, so its reply would be taken by the new session's
// call with the same id (here both go without one, and the stale reply
// would end the session as a reply to nothing, or answer the new call).
// The call is held between register and send (testHookRegistered) while
// the client reconnects; the next session's establish waits for it
// (testHookBarrier tells the test it got there).
func TestNoSendOnTheNextSession(t *testing.T) {
	s := qmptest.NewServer(qmptest.Standard)
	t.Cleanup(s.Close)
	c, ctx := connectedClient(t, s.Addr)

	held, release := make(chan struct{}), make(chan struct{})
	first := true
	testHookRegistered = func() {
		if first { // only the stale call runs this far before release
			first = false
			close(held)
			<-release
		}
	}
	atBarrier := make(chan struct{}, 1)
	testHookBarrier = func() { atBarrier <- struct{}{} }
	t.Cleanup(func() { testHookRegistered, testHookBarrier = nil, nil })

	stale := make(chan error, 1)
	go func() {
		_, err := c.Execute(ctx, "echo", map[string]int{"n": 1})
		stale <- err
	}()
	<-held
	c.Disconnect()
	connected := make(chan error, 1)
	go func() { connected <- c.Connect(ctx, s.Addr) }()
	// The new session is negotiated and about to go live (or, without
	// the barrier, live): now let the stale call send.
	select {
	case <-atBarrier:
	case err := <-connected:
		connected <- err
	case <-ctx.Done():
		t.Fatal("the reconnect neither reached the barrier nor ended")
	}
	close(release)
	var de *DisconnectedError
	if err := <-stale; !errors.As(err, &de) {
		t.Fatalf("the call registered before the reconnect: %v; want a DisconnectedError", err)
	}
	if err := <-connected; err != nil {
		t.Fatal(err)
	}
	ret, err := c.Execute(ctx, "echo", map[string]int{"n": 2})
	if err != nil {
		t.Fatalf("the next session's call: %v", err)
	}
	var got struct{ N int }
	if json.Unmarshal(ret, &got); got.N != 2 {
		t.Fatalf("the next session's call got %s, the stale call's reply", ret)
	}
}
