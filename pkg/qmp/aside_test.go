package qmp_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/protocol"
	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// TestQEMUAsideTrace: the trace is told which messages belong to calls
// made with an Aside context, request and reply, whichever order QEMU
// writes a reply's members in (an error reply puts "id" first); the
// others, events included, are not.
func TestQEMUAsideTrace(t *testing.T) {
	sock := qmptest.StartQEMU(t)
	var mu sync.Mutex
	var marked, plain []string
	c := connect(t, sock, qmp.WithAsideTrace(func(dir protocol.Direction, msg []byte, aside bool) {
		mu.Lock()
		defer mu.Unlock()
		line := dir.String() + " " + string(msg)
		if aside {
			marked = append(marked, line)
		} else {
			plain = append(plain, line)
		}
	}))
	ctx := testContext(t)
	if _, err := c.Execute(qmp.Aside(ctx), "query-status", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Execute(qmp.Aside(ctx), "no-such-command", nil); err == nil {
		t.Fatal("no-such-command succeeded")
	}
	if _, err := c.Execute(ctx, "stop", nil); err != nil {
		t.Fatal(err)
	}
	// The Aside call's id in a message of the user's does not mark it.
	if _, err := c.Execute(ctx, "qom-get", map[string]any{"path": "qmpsh-1", "property": "type"}); err == nil {
		t.Fatal("qom-get of a path that does not exist succeeded")
	}
	if _, err := c.Execute(ctx, "cont", nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{`--> {"execute":"query-status","id":"qmpsh-1"}`, `<-- {"return": {"status": "running"`,
		`--> {"execute":"no-such-command","id":"qmpsh-2"}`, `<-- {"id": "qmpsh-2", "error": `}
	if len(marked) != len(want) {
		t.Fatalf("marked %d messages, want %d:\n%s", len(marked), len(want), strings.Join(marked, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(marked[i], w) {
			t.Errorf("marked message %d = %s, want it to begin %s", i, marked[i], w)
		}
	}
	all := strings.Join(plain, "\n")
	for _, w := range []string{`"event": "STOP"`, `"execute":"stop"`, `"execute":"qom-get"`, `"execute":"cont"`} {
		if !strings.Contains(all, w) {
			t.Errorf("unmarked messages lack %s:\n%s", w, all)
		}
	}
}
