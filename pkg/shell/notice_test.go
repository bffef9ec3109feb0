package shell

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// feedEditor is an interactive editor fed line by line by the test, its
// output watched.
type feedEditor struct {
	lines chan string
	out   *qmptest.Buffer
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
		ed := &feedEditor{lines: make(chan string, 1), out: new(qmptest.Buffer)}
		done := make(chan error, 1)
		go func() { done <- Run(ctx, Config{Client: c, Editor: ed}) }()
		ed.lines <- `{"execute": "quit"}`
		ed.out.WaitFor(t, "connection lost: ", 1)
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
