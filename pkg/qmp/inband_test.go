package qmp

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// At most maxInBand in-band calls are in flight: a call beyond them waits
// unsent until one returns, and one that gives up waiting is never sent.
// exec-oob does not wait behind them. testHookInBandWait tells the test
// that a call found every slot taken.
func TestInBandSlots(t *testing.T) {
	if maxInBand != 2 {
		t.Fatalf("the test holds 2 in-band calls, maxInBand is %d", maxInBand)
	}
	addr, conns, reqs := forwardingServer(t)
	c, ctx := connectedClient(t, addr)
	conn := <-conns

	waiting := make(chan struct{}, 4)
	testHookInBandWait = func() { waiting <- struct{}{} }
	t.Cleanup(func() { testHookInBandWait = nil })

	type outcome struct {
		ret json.RawMessage
		err error
	}
	call := func(ctx context.Context, name string) chan outcome {
		ch := make(chan outcome, 1)
		go func() {
			ret, err := c.Execute(ctx, name, nil)
			ch <- outcome{ret, err}
		}()
		return ch
	}
	next := func() *qmptest.Request {
		t.Helper()
		select {
		case req := <-reqs:
			return req
		case <-ctx.Done():
			t.Fatal("the server got no request")
			return nil
		}
	}
	waitFull := func(what string) {
		t.Helper()
		select {
		case <-waiting:
		case req := <-reqs:
			t.Fatalf("%s was sent with %d in-band calls in flight: %s", what, maxInBand, req.Execute)
		case <-ctx.Done():
			t.Fatalf("%s neither waited nor was sent", what)
		}
	}
	reply := func(req *qmptest.Request) {
		t.Helper()
		if err := conn.Reply(req.ID, req.Execute); err != nil {
			t.Fatal(err)
		}
	}
	want := func(ch chan outcome, name string) {
		t.Helper()
		if o := <-ch; o.err != nil || string(o.ret) != `"`+name+`"` {
			t.Fatalf("Execute(%s) = %s, %v", name, o.ret, o.err)
		}
	}

	a, b := call(ctx, "a"), call(ctx, "b")
	held := map[string]*qmptest.Request{}
	for range 2 {
		req := next()
		held[req.Execute] = req
	}

	// A third waits; given up, it is never sent.
	cctx, ccancel := context.WithCancel(ctx)
	gaveUp := call(cctx, "c")
	waitFull("a third call")
	ccancel()
	if o := <-gaveUp; !errors.Is(o.err, context.Canceled) {
		t.Fatalf("the call given up while waiting: %s, %v; want context.Canceled", o.ret, o.err)
	}

	// exec-oob goes past the in-band calls.
	oob := make(chan outcome, 1)
	go func() {
		ret, err := c.ExecuteOOB(ctx, "x-oob", nil)
		oob <- outcome{ret, err}
	}()
	if req := next(); req.ExecOOB != "x-oob" {
		t.Fatalf("the server got %q, want the exec-oob", req.Execute)
	} else if err := conn.Reply(req.ID, req.ExecOOB); err != nil {
		t.Fatal(err)
	}
	want(oob, "x-oob")

	// Another waits, and goes once a slot is free.
	d := call(ctx, "d")
	waitFull("a fourth call")
	reply(held["a"])
	want(a, "a")
	if req := next(); req.Execute != "d" {
		t.Fatalf("after a's reply the server got %q, want d", req.Execute)
	} else {
		held["d"] = req
	}
	reply(held["b"])
	reply(held["d"])
	want(b, "b")
	want(d, "d")
}

// Disconnect while both in-band slots are taken and a third call waits
// for one, under a context that does not end: every call returns, with
// an error.
func TestInBandWaitEndsWithDisconnect(t *testing.T) {
	addr, _, reqs := forwardingServer(t)
	c, ctx := connectedClient(t, addr)
	waiting := make(chan struct{}, 4)
	testHookInBandWait = func() { waiting <- struct{}{} }
	t.Cleanup(func() { testHookInBandWait = nil })
	errs := make(chan error, 3)
	run := func() {
		_, err := c.Execute(context.Background(), "x", nil)
		errs <- err
	}
	go run()
	go run()
	for range 2 {
		select {
		case <-reqs:
		case <-ctx.Done():
			t.Fatal("the server did not get both calls")
		}
	}
	go run()
	select {
	case <-waiting:
	case <-ctx.Done():
		t.Fatal("the third call did not wait")
	}
	c.Disconnect()
	for range 3 {
		select {
		case err := <-errs:
			if err == nil {
				t.Error("a call succeeded though the session ended before any reply")
			}
		case <-ctx.Done():
			t.Fatal("a call did not return after Disconnect")
		}
	}
}

// The gate opens for gateFree calls after a window of calls that waited
// for a slot in which more than one in 8 found nothing pending, and only
// then.
func TestInBandGate(t *testing.T) {
	var g inbandGate
	window := func(idle int) {
		for i := range gateWindow {
			g.waited(i < idle)
		}
	}
	if g.pass() {
		t.Fatal("a new gate is open")
	}
	window(gateWindow / 8)
	if g.pass() {
		t.Fatalf("the gate opened after %d idle calls in %d", gateWindow/8, gateWindow)
	}
	window(gateWindow/8 + 1)
	for i := range gateFree {
		if !g.pass() {
			t.Fatalf("the gate closed after %d calls, want %d", i, gateFree)
		}
	}
	if g.pass() {
		t.Fatalf("the gate stayed open past %d calls", gateFree)
	}
}

// Against a server that answers at once (the fake server), 8 callers
// find it idle often enough for the gate to open.
func TestInBandGateOpensForAQuickServer(t *testing.T) {
	s := qmptest.NewServer(qmptest.Standard)
	t.Cleanup(s.Close)
	c, ctx := connectedClient(t, s.Addr)
	opened := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.gate.opened > 0
	}
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			for i := 0; i < 20*gateWindow && !opened(); i++ {
				if _, err := c.Execute(ctx, "query-status", nil); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if !opened() {
		t.Errorf("the gate stayed shut through %d calls of 8 callers", 8*20*gateWindow)
	}
}

// forwardingServer is a fake server that negotiates, then hands the test
// its connection and every request, answering none itself.
func forwardingServer(t *testing.T) (addr string, conns <-chan *qmptest.Conn, reqs <-chan *qmptest.Request) {
	t.Helper()
	cc := make(chan *qmptest.Conn, 1)
	rc := make(chan *qmptest.Request, 8)
	s := qmptest.NewServer(func(c *qmptest.Conn) {
		if c.Greet() != nil {
			return
		}
		neg, err := c.ReadRequest()
		if err != nil || c.Reply(neg.ID, struct{}{}) != nil {
			return
		}
		cc <- c
		for {
			req, err := c.ReadRequest()
			if err != nil {
				return
			}
			rc <- req
		}
	})
	t.Cleanup(s.Close)
	return s.Addr, cc, rc
}

// connectedClient returns a client connected to addr, disconnected at
// the end, and a context that bounds the test.
func connectedClient(t *testing.T, addr string) (*Client, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	c := NewClient()
	if err := c.Connect(ctx, addr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Disconnect() })
	return c, ctx
}
