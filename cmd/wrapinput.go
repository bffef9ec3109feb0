package cmd

import (
	"context"
	"errors"
	"io"
	"sync"
	"syscall"
	"time"

	"github.com/qmpsh/qmpsh/pkg/protocol"
	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/shell"
)

// endOnExit makes ed's input end (stdin, which ed reads, is cancelled)
// when QEMU exits, ctx ends or stdoutBroken is closed, rather than when
// the user next types a line. When QEMU exits, it first waits (briefly)
// for client to notice the hang-up, so that the shell reports the lost
// connection, after any reply it was printing, before it ends. The
// goroutine it starts ends with QEMU, with the input or with stdout.
func endOnExit(ctx context.Context, ed shell.Editor, stdin *cancelableReader, qemu *qemuProcess, client *qmp.Client, stdoutBroken <-chan struct{}) *endingEditor {
	ended := make(chan struct{})
	var once sync.Once
	end := func() {
		once.Do(func() {
			close(ended)
			stdin.cancel()
		})
	}
	context.AfterFunc(ctx, end)
	go func() {
		select {
		case <-qemu.done:
			// QEMU's socket closed as it died: its end of file is
			// already there for the client to read.
			wctx, cancel := context.WithTimeout(ctx, time.Second)
			client.WaitForStateChange(wctx, protocol.Running)
			cancel()
			end()
		case <-stdoutBroken:
			end()
		case <-ended:
		}
	}()
	return &endingEditor{Editor: ed, end: ended}
}

// exitAfterQuit bounds how long awaitExit waits for QEMU to exit.
const exitAfterQuit = 2 * time.Second

// awaitExit waits, after QEMU accepted a quit and hung up (the shell's
// QuitAccepted), until its exit has ended the input, so that the next
// line is not read: at most exitAfterQuit, or until ctx ends (Ctrl-C).
func (e *endingEditor) awaitExit(ctx context.Context) {
	timer := time.NewTimer(exitAfterQuit)
	defer timer.Stop()
	select {
	case <-e.end:
	case <-timer.C:
	case <-ctx.Done():
	}
}

// endingEditor is an editor whose input ends (ReadLine returns io.EOF)
// once end is closed. Its input, stdin, must be cancelled then: that ends
// a read already waiting for a line, and this the lines read ahead.
type endingEditor struct {
	shell.Editor
	end <-chan struct{}
}

// cleanIfEnded erases the prompt the shell left on the screen when its
// input was ended under it, so that the message saying why (QEMU was
// killed) starts a line of its own rather than following "(QEMU) ". It is
// called once the shell has stopped, when nothing redraws the prompt.
func (e *endingEditor) cleanIfEnded() {
	select {
	case <-e.end:
	default:
		return // the user ended the line, and the terminal shows it
	}
	if c, ok := e.Editor.(interface{ Clean() }); ok {
		c.Clean()
	}
}

func (e *endingEditor) ReadLine() (string, error) {
	select {
	case <-e.end:
		return "", io.EOF
	default:
	}
	line, err := e.Editor.ReadLine()
	select {
	case <-e.end:
		return "", io.EOF
	default:
	}
	return line, err
}

// cancelableReader is a reader whose Read, even one waiting for input,
// returns io.EOF once cancel is called. The underlying reader is read on
// a goroutine, which a cancelled Read leaves behind until that read
// returns; nothing is read after cancel.
//
// Neither readline nor a bufio.Scanner can otherwise stop waiting for a
// line: closing a terminal's descriptor does not end a read(2) on it.
type cancelableReader struct {
	r         io.Reader
	cancelled chan struct{}
	once      sync.Once
	mu        sync.Mutex // one Read at a time
}

type readResult struct {
	b   []byte
	err error
}

func newCancelableReader(r io.Reader) *cancelableReader {
	return &cancelableReader{r: r, cancelled: make(chan struct{})}
}

func (c *cancelableReader) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.cancelled:
		return 0, io.EOF
	default:
	}
	if len(p) == 0 {
		return 0, nil
	}
	// The goroutine reads into a buffer of its own: p is the caller's
	// again as soon as Read returns.
	ch := make(chan readResult, 1)
	buf := make([]byte, len(p))
	go func() {
		n, err := c.r.Read(buf)
		ch <- readResult{buf[:n], err}
	}()
	select {
	case r := <-ch:
		return copy(p, r.b), r.err
	case <-c.cancelled:
		return 0, io.EOF
	}
}

func (c *cancelableReader) cancel() { c.once.Do(func() { close(c.cancelled) }) }

// Close cancels; the underlying reader stays open.
func (c *cancelableReader) Close() error {
	c.cancel()
	return nil
}

// pipeWatch passes writes on to w, and closes broken when one fails
// because w's reader has gone (EPIPE: | head exited).
type pipeWatch struct {
	w      io.Writer
	once   sync.Once
	broken chan struct{}
}

func newPipeWatch(w io.Writer) *pipeWatch { return &pipeWatch{w: w, broken: make(chan struct{})} }

func (p *pipeWatch) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	if errors.Is(err, syscall.EPIPE) {
		p.once.Do(func() { close(p.broken) })
	}
	return n, err
}

func (p *pipeWatch) isBroken() bool { return closed(p.broken) }
