package cmd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
)

// checkedWriter is an output qmpsh writes results or a log to (standard
// output, the --log file) whose first failed write is kept, so that the
// exit status can say the output is incomplete: a full disk behind
// `> out.json` must not look like success. After a failure it writes
// nothing more, and each write returns that first error.
//
// A closed pipe (EPIPE) is kept too, but not reported: a command that
// catches SIGPIPE reports it itself (141, quietly), the others die of
// the signal at that write.
type checkedWriter struct {
	w    io.Writer
	name string       // "standard output", "--log FILE"
	fail func(error)  // called once, at the first failure other than EPIPE; may be nil
	done func() error // closes w, for a file qmpsh opened; nil otherwise
	mu   sync.Mutex   // guards err and said
	err  error        // the first failed write's
	said bool         // the command's own message named the failure
}

func (c *checkedWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n, err := c.w.Write(p)
	if err == nil {
		return n, nil
	}
	c.mu.Lock()
	first := c.err == nil
	if first {
		c.err = err
	}
	c.mu.Unlock()
	if first && c.fail != nil && !errors.Is(err, syscall.EPIPE) {
		c.fail(err)
	}
	return n, err
}

// failed returns the first failed write's error, but for a closed pipe.
func (c *checkedWriter) failed() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil || errors.Is(c.err, syscall.EPIPE) {
		return nil
	}
	return c.err
}

// Close closes a file qmpsh opened (the --log file), which may report a
// write that failed late, as on NFS.
func (c *checkedWriter) Close() error {
	if c.done == nil {
		return nil
	}
	err := c.done()
	if err != nil {
		c.mu.Lock()
		if c.err == nil {
			c.err = err
		}
		c.mu.Unlock()
	}
	return err
}

// outputs are a run's checked outputs: standard output, and each --log
// file a client opened.
type outputs struct {
	mu  sync.Mutex
	all []*checkedWriter
}

func (o *outputs) add(c *checkedWriter) *checkedWriter {
	if o == nil {
		return c
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.all = append(o.all, c)
	return c
}

// saidIn marks the outputs whose failure err, the message a command
// ended with, carries: report says no more about them.
func (o *outputs) saidIn(err error) {
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, c := range o.all {
		if ferr := c.failed(); ferr != nil && errors.Is(err, ferr) {
			c.mu.Lock()
			c.said = true
			c.mu.Unlock()
		}
	}
}

// report writes a line to w for each output whose writes failed (once
// for a --log file many targets' clients wrote to), and says whether
// standard output, the first output, and any output failed.
func (o *outputs) report(w io.Writer) (stdout, any bool) {
	if o == nil {
		return false, false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	said := map[string]bool{}
	for i, c := range o.all {
		err := c.failed()
		if err == nil || said[c.name] {
			continue
		}
		said[c.name], any = true, true
		stdout = stdout || i == 0
		c.mu.Lock()
		told := c.said
		c.mu.Unlock()
		if !told {
			fmt.Fprintf(w, "qmpsh: writing %s failed, so it is incomplete: %v\n", c.name, plainWriteError(err))
		}
	}
	return stdout, any
}

// plainWriteError is err without Go's "write /dev/stdout: " prefix,
// which only repeats what the message names.
func plainWriteError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// outFile is the file behind w, a command's standard output, when there
// is one.
func outFile(w io.Writer) (*os.File, bool) {
	switch w := w.(type) {
	case *os.File:
		return w, true
	case *checkedWriter:
		return outFile(w.w)
	}
	return nil, false
}
