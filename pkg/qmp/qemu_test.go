package qmp_test

// Integration tests against real QEMU 7.2 (qemu-system-x86_64 -M none and
// qemu-storage-daemon). They skip without QEMU unless QMPSH_REQUIRE_QEMU=1.

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qmpsh/qmpsh/pkg/protocol"
	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// connect returns a negotiated client on addr, disconnected at the end.
func connect(t *testing.T, addr string, opts ...qmp.Option) *qmp.Client {
	t.Helper()
	c := qmp.NewClient(opts...)
	if err := c.Connect(testContext(t), addr); err != nil {
		t.Fatalf("Connect(%s): %v", addr, err)
	}
	t.Cleanup(func() { c.Disconnect() })
	return c
}

func TestQEMU(t *testing.T) {
	sock := qmptest.StartQEMU(t)
	c := connect(t, sock)
	ctx := testContext(t)

	t.Run("Greeting", func(t *testing.T) {
		g := c.Greeting()
		if g == nil || g.Version.QEMU.Major < 2 {
			t.Fatalf("greeting = %+v", g)
		}
		// migrate-pause is one of the few commands QEMU allows out of
		// band; outside postcopy it fails, but only after being accepted
		// as an OOB command.
		_, err := c.ExecuteOOB(ctx, "migrate-pause", nil)
		var ee *qmp.ExecuteError
		if !errors.As(err, &ee) || ee.Class != "GenericError" || strings.Contains(ee.Desc, "OOB") {
			t.Errorf("ExecuteOOB(migrate-pause) = %v, want a GenericError about migration state", err)
		}
	})

	t.Run("QueryStatus", func(t *testing.T) {
		ret, err := c.Execute(ctx, "query-status", nil)
		if err != nil {
			t.Fatal(err)
		}
		var st struct {
			Status  string `json:"status"`
			Running *bool  `json:"running"`
		}
		if err := json.Unmarshal(ret, &st); err != nil || st.Status == "" || st.Running == nil {
			t.Fatalf("query-status returned %s (%v)", ret, err)
		}
	})

	t.Run("ArgumentTakingCommand", func(t *testing.T) {
		ret, err := c.Execute(ctx, "qom-get", map[string]any{"path": "/machine", "property": "type"})
		if err != nil {
			t.Fatal(err)
		}
		if string(ret) != `"none-machine"` {
			t.Fatalf("qom-get /machine type = %s", ret)
		}
	})

	t.Run("CommandNotFound", func(t *testing.T) {
		_, err := c.Execute(ctx, "no-such-command", nil)
		var ee *qmp.ExecuteError
		if !errors.As(err, &ee) || ee.Class != "CommandNotFound" {
			t.Fatalf("error = %v, want CommandNotFound", err)
		}
		if want := "CommandNotFound: The command no-such-command has not been found"; err.Error() != want {
			t.Errorf("message = %q, want %q", err, want)
		}
	})

	t.Run("GenericError", func(t *testing.T) {
		_, err := c.Execute(ctx, "object-add", map[string]any{"qom-type": "secret", "id": "s0", "data": 123})
		var ee *qmp.ExecuteError
		if !errors.As(err, &ee) || ee.Class != "GenericError" ||
			ee.Desc != "Invalid parameter type for 'data', expected: string" {
			t.Fatalf("error = %#v", err)
		}
	})

	t.Run("StopContEvents", func(t *testing.T) {
		l := c.Listen("STOP", "RESUME")
		defer l.Close()
		for _, cmd := range []string{"stop", "cont"} {
			if _, err := c.Execute(ctx, cmd, nil); err != nil {
				t.Fatal(err)
			}
		}
		for _, want := range []string{"STOP", "RESUME"} {
			select {
			case ev := <-l.Events():
				if ev.Name != want {
					t.Fatalf("event = %s, want %s", ev.Name, want)
				}
				if ev.Timestamp.IsZero() || time.Since(ev.Timestamp) > time.Hour {
					t.Errorf("%s timestamp = %v", ev.Name, ev.Timestamp)
				}
			case <-ctx.Done():
				t.Fatalf("no %s event", want)
			}
		}
	})

	t.Run("QueryQMPSchemaWhole", func(t *testing.T) {
		ret, err := c.Execute(ctx, "query-qmp-schema", nil)
		if err != nil {
			t.Fatal(err)
		}
		var schema []struct {
			Name     string `json:"name"`
			MetaType string `json:"meta-type"`
		}
		if err := json.Unmarshal(ret, &schema); err != nil {
			t.Fatal(err)
		}
		if len(ret) < 100_000 || len(schema) < 500 {
			t.Fatalf("schema: %d bytes, %d entries; want the whole ~200 KB", len(ret), len(schema))
		}
		found := false
		for _, e := range schema {
			found = found || (e.Name == "query-status" && e.MetaType == "command")
		}
		if !found {
			t.Error("query-status missing from the schema")
		}
	})

	t.Run("Raw", func(t *testing.T) {
		reply, err := c.Raw(ctx, json.RawMessage(`{"execute":"query-status","id":{"mine":[1,2]}}`))
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Return json.RawMessage `json:"return"`
			ID     json.RawMessage `json:"id"`
		}
		json.Unmarshal(reply, &r)
		if r.Return == nil || string(r.ID) != `{"mine":[1,2]}` {
			t.Fatalf("raw reply = %s", reply)
		}
	})

	t.Run("GetfdWithRealFile", func(t *testing.T) {
		f, err := os.CreateTemp(t.TempDir(), "fd")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := c.ExecuteWithFiles(ctx, "getfd", map[string]any{"fdname": "passed"}, f); err != nil {
			t.Fatalf("getfd: %v", err)
		}
		// QEMU now holds the descriptor under that name: closefd finds it,
		// and a second closefd does not.
		if _, err := c.Execute(ctx, "closefd", map[string]any{"fdname": "passed"}); err != nil {
			t.Fatalf("closefd of the passed fd: %v", err)
		}
		_, err = c.Execute(ctx, "closefd", map[string]any{"fdname": "passed"})
		var ee *qmp.ExecuteError
		if !errors.As(err, &ee) {
			t.Fatalf("second closefd = %v, want an error reply", err)
		}
	})

	t.Run("GetfdWithoutFileFails", func(t *testing.T) {
		_, err := c.Execute(ctx, "getfd", map[string]any{"fdname": "nothing"})
		var ee *qmp.ExecuteError
		if !errors.As(err, &ee) || ee.Class != "GenericError" {
			t.Fatalf("getfd without a file = %v", err)
		}
	})
}

func TestQEMUQuitEndsSession(t *testing.T) {
	sock := qmptest.StartQEMU(t)
	c := qmp.NewClient()
	ctx := testContext(t)
	if err := c.Connect(ctx, sock); err != nil {
		t.Fatal(err)
	}
	w := c.Watch()
	defer w.Close()
	if _, err := c.Execute(ctx, "quit", nil); err != nil {
		t.Fatal(err)
	}
	// QEMU hangs up after quit: the session ends by itself.
	for {
		s, err := w.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.String() == "DISCONNECTING" {
			break
		}
	}
	if _, err := c.Execute(ctx, "query-status", nil); err == nil {
		t.Error("Execute after QEMU quit succeeded")
	}
	if err := c.Disconnect(); err == nil || err.Error() != "connection closed by peer" {
		t.Errorf("Disconnect() = %v, want connection closed by peer", err)
	}
}

// TestQEMUDisconnectCause: QEMU hanging up after quit is the recorded
// cause, which every Disconnect returns, not only the first; a wait on
// the runstate sees the session end.
func TestQEMUDisconnectCause(t *testing.T) {
	sock := qmptest.StartQEMU(t)
	c := qmp.NewClient()
	ctx := testContext(t)
	if err := c.Connect(ctx, sock); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Execute(ctx, "quit", nil); err != nil {
		t.Fatal(err)
	}
	if !c.WaitForStateChange(ctx, protocol.Running) {
		t.Fatal("WaitForStateChange(RUNNING): the session did not end")
	}
	for i := range 3 {
		if err := c.Disconnect(); !errors.Is(err, protocol.ErrClosedByPeer) {
			t.Errorf("Disconnect() call %d = %v, want connection closed by peer", i+1, err)
		}
		if s := c.Runstate(); s != protocol.Idle {
			t.Errorf("runstate after Disconnect call %d = %v, want IDLE", i+1, s)
		}
	}
	if err := c.Err(); !errors.Is(err, protocol.ErrClosedByPeer) {
		t.Errorf("Err() = %v, want connection closed by peer", err)
	}
}

// TestQEMUTrace: the trace hook sees the whole conversation in order,
// greeting and negotiation included, as bytes that are QEMU's and ours.
func TestQEMUTrace(t *testing.T) {
	sock := qmptest.StartQEMU(t)
	var mu sync.Mutex
	var lines []string
	c := connect(t, sock, qmp.WithTrace(func(dir protocol.Direction, msg []byte) {
		mu.Lock()
		lines = append(lines, dir.String()+" "+string(msg))
		mu.Unlock()
	}))
	if _, err := c.Execute(testContext(t), "query-status", nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{`<-- {"QMP": `, `--> {"execute":"qmp_capabilities"`, `<-- {"return": {}}`,
		`--> {"execute":"query-status"}`, `<-- {"return": {"status": `}
	if len(lines) != len(want) {
		t.Fatalf("traced %d messages, want %d:\n%s", len(lines), len(want), strings.Join(lines, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("message %d = %s, want it to begin %s", i, lines[i], w)
		}
	}
}

func TestStorageDaemon(t *testing.T) {
	sock := qmptest.StartStorageDaemon(t)
	c := connect(t, sock)
	ctx := testContext(t)
	if _, err := c.Execute(ctx, "blockdev-add", map[string]any{"driver": "null-co", "node-name": "n0"}); err != nil {
		t.Fatal(err)
	}
	ret, err := c.Execute(ctx, "query-named-block-nodes", nil)
	if err != nil {
		t.Fatal(err)
	}
	var nodes []struct {
		NodeName string `json:"node-name"`
		Drv      string `json:"drv"`
	}
	if err := json.Unmarshal(ret, &nodes); err != nil || len(nodes) != 1 || nodes[0].NodeName != "n0" || nodes[0].Drv != "null-co" {
		t.Fatalf("nodes = %s (%v)", ret, err)
	}
	_, err = c.Execute(ctx, "query-status", nil) // not a storage-daemon command
	var ee *qmp.ExecuteError
	if !errors.As(err, &ee) || ee.Class != "CommandNotFound" {
		t.Fatalf("query-status on the storage daemon = %v", err)
	}
}

func TestQEMUAccept(t *testing.T) {
	qmptest.RequireQEMU(t, "qemu-system-x86_64")
	dir, err := os.MkdirTemp("", "qmpacc")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "qmp.sock")
	listening := make(chan string, 1)
	c := qmp.NewClient(qmp.WithListening(func(addr string) { listening <- addr }))
	ctx := testContext(t)
	result := make(chan error, 1)
	go func() { result <- c.Accept(ctx, sock) }()
	// QEMU in client mode dials once and gives up if nobody listens, so
	// start it only when the socket is ready.
	if addr := <-listening; addr != "unix:"+sock {
		t.Fatalf("listening on %q, want unix:%s", addr, sock)
	}
	qmptest.StartQEMUClient(t, sock)
	if err := <-result; err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("socket not removed after accept: %v", err)
	}
	ret, err := c.Execute(ctx, "query-status", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ret) == 0 {
		t.Fatal("empty query-status")
	}
}

// A raw message that is JSON to Go but not one message to QEMU's parser
// is refused before it is sent: QEMU would answer with errors that have
// no id, which would end the session. The session goes on.
func TestQEMURawRefused(t *testing.T) {
	c := connect(t, qmptest.StartQEMU(t))
	ctx := testContext(t)
	for _, msg := range []string{
		`{"execute":"query-status","arguments":{"a":0e5}}`,
		`{"execute":"query-status","arguments":{"a":1,"a":2}}`,
		`{"execute":"query-status","execute":"stop"}`,
		`{"execute":"query-status","arguments":{"a":"\ud800"}}`,
		`{"execute":"query-status","arguments":` + strings.Repeat("[", 1100) + strings.Repeat("]", 1100) + `}`,
	} {
		_, err := c.Raw(ctx, json.RawMessage(msg))
		if err == nil || !strings.HasPrefix(err.Error(), "raw QMP message not sent: QEMU would refuse it: ") {
			t.Errorf("Raw(%.60s) = %v, want it refused before sending", msg, err)
		}
	}
	if _, err := c.Execute(ctx, "query-status", nil); err != nil {
		t.Fatalf("after the refusals: %v", err)
	}
}
