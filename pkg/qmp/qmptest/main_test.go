package qmptest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// rawClient speaks QMP by hand, so that the tests check bytes on the wire
// rather than trusting a client that they are meant to help test.
type rawClient struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func dial(t testing.TB, addr string) *rawClient {
	t.Helper()
	c, err := net.Dial("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// A hung test should fail with a message, not wait for go test's
	// -timeout.
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawClient{t: t, c: c, r: bufio.NewReader(c)}
}

func (rc *rawClient) send(s string) {
	rc.t.Helper()
	if _, err := rc.c.Write([]byte(s)); err != nil {
		rc.t.Fatalf("send %s: %v", s, err)
	}
}

// line reads one message and checks QMP's CRLF framing.
func (rc *rawClient) line() []byte {
	rc.t.Helper()
	b, err := rc.r.ReadBytes('\n')
	if err != nil {
		rc.t.Fatalf("read: %v (got %q)", err, b)
	}
	if !bytes.HasSuffix(b, []byte("\r\n")) {
		rc.t.Fatalf("message %q does not end in CRLF", b)
	}
	return b
}

func (rc *rawClient) msg() map[string]json.RawMessage {
	rc.t.Helper()
	b := rc.line()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		rc.t.Fatalf("message %q: %v", b, err)
	}
	return m
}

// negotiate reads the greeting and completes capabilities negotiation.
func (rc *rawClient) negotiate() {
	rc.t.Helper()
	if m := rc.msg(); m["QMP"] == nil {
		rc.t.Fatalf("greeting lacks QMP: %v", m)
	}
	rc.send(`{"execute": "qmp_capabilities"}`)
	if m := rc.msg(); string(m["return"]) != "{}" {
		rc.t.Fatalf("negotiation failed: %s", m["error"])
	}
}

// jsonEqual compares JSON values regardless of layout.
func jsonEqual(t testing.TB, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got %q: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %q: %v", want, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if !bytes.Equal(gb, wb) {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func errorClass(t testing.TB, m map[string]json.RawMessage) (class, desc string) {
	t.Helper()
	var e struct{ Class, Desc string }
	if err := json.Unmarshal(m["error"], &e); err != nil || e.Class == "" {
		t.Fatalf("not an error reply: %v", m)
	}
	return e.Class, e.Desc
}
