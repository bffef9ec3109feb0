package shell

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// feedEditor is an interactive editor fed line by line by the test, its
// output watched.
type feedEditor struct {
	lines chan string
	out   *watchedBuffer
}

func (e *feedEditor) ReadLine() (string, error) {
	l, ok := <-e.lines
	if !ok {
		return "", io.EOF
	}
	return l, nil
}
func (e *feedEditor) SetPrompt(string)                       {}
func (e *feedEditor) Writer() io.Writer                      { return e.out }
func (e *feedEditor) Interactive() bool                      { return true }
func (e *feedEditor) Interrupts() (<-chan os.Signal, func()) { return nil, func() {} }
func (e *feedEditor) Close() error                           { return nil }

// watchedBuffer is a buffer whose writes can be waited for.
type watchedBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newWatchedBuffer() *watchedBuffer { return &watchedBuffer{changed: make(chan struct{})} }

func (w *watchedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	close(w.changed)
	w.changed = make(chan struct{})
	return len(p), nil
}

func (w *watchedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitFor waits until the output holds s; the bound is for a broken
// shell only.
func (w *watchedBuffer) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		w.mu.Lock()
		got, ch := strings.Contains(w.buf.String(), s), w.changed
		w.mu.Unlock()
		if got {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no %q in output:\n%s", s, w.String())
		}
	}
}

// TestReplyBeforeSessionEnd: QEMU answers a quit and hangs up at once;
// on the terminal, where results and notices share the screen, the
// answer comes first, then the notice of the lost connection.
func TestReplyBeforeSessionEnd(t *testing.T) {
	for i := range 10 {
		sock := qmptest.StartQEMU(t)
		c := qmp.NewClient()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := c.Connect(ctx, sock); err != nil {
			t.Fatal(err)
		}
		ed := &feedEditor{lines: make(chan string, 1), out: newWatchedBuffer()}
		done := make(chan error, 1)
		go func() { done <- Run(ctx, Config{Client: c, Editor: ed}) }()
		ed.lines <- `{"execute": "quit"}`
		ed.out.waitFor(t, "connection lost: ")
		close(ed.lines)
		<-done
		c.Disconnect()
		cancel()
		out := ed.out.String()
		ret, lost := strings.Index(out, `{"return":{}}`), strings.Index(out, "connection lost: ")
		if ret < 0 || ret > lost {
			t.Fatalf("run %d: the reply is not before the notice:\n%s", i, out)
		}
	}
}
