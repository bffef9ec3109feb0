package qmp_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/protocol"
	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// A reply the server sent before it hung up reaches its caller, though a
// request written after the hang-up failed (EPIPE): QEMU answers quit and
// exits, and a client with other calls under way must not lose quit's
// reply to that failed write. Here quit's reply is held in the client's
// trace until the server has closed and the next request's write has
// failed.
func TestReplyBeforeHangUpKept(t *testing.T) {
	closed := make(chan struct{})
	s := fakeServer(t, func(c *qmptest.Conn) {
		if c.Greet() != nil {
			return
		}
		if req, err := c.ReadRequest(); err != nil || c.Reply(req.ID, map[string]any{}) != nil {
			return
		}
		req, err := c.ReadRequest() // quit
		if err != nil {
			return
		}
		c.Reply(req.ID, map[string]any{})
		c.Close()
		close(closed)
	})
	var logs qmptest.Buffer
	var armed atomic.Bool
	held, release := make(chan struct{}), make(chan struct{})
	c := connect(t, s.Addr,
		qmp.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		qmp.WithTrace(func(dir protocol.Direction, msg []byte) {
			if dir == protocol.Received && strings.HasPrefix(string(msg), `{"return"`) && armed.CompareAndSwap(true, false) {
				close(held)
				<-release
			}
		}))
	ctx := testContext(t)
	armed.Store(true)
	quit := make(chan error, 1)
	go func() {
		_, err := c.Execute(ctx, "quit", nil)
		quit <- err
	}()
	<-held
	<-closed
	other := make(chan error, 1)
	go func() {
		_, err := c.Execute(ctx, "query-status", nil)
		other <- err
	}()
	// The write has failed, and the session has either ended (quit's
	// reply lost) or waits for the reader to reach the end of the stream.
	wctx, stop := context.WithCancel(ctx)
	refused := make(chan struct{})
	go func() {
		if logs.Wait(wctx, "the peer refused a write", 1) {
			close(refused)
		}
	}()
	select {
	case err := <-other:
		other <- err
	case <-refused:
	case <-ctx.Done():
		t.Fatal("the request after the hang-up neither failed nor was refused")
	}
	stop()
	close(release)
	if err := <-quit; err != nil {
		t.Fatalf("quit, answered before the server hung up: %v", err)
	}
	var de *qmp.DisconnectedError
	if err := <-other; !errors.As(err, &de) || !errors.Is(err, protocol.ErrClosedByPeer) {
		t.Fatalf("the request written after the hang-up: %v; want a DisconnectedError, the server having closed", err)
	}
}
