package cmd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// GACpOptions are the inputs of qmpsh ga cp.
type GACpOptions struct {
	GAOptions
	Src, Dst string
}

func newGACpCmd(g *GlobalOptions, runF func(context.Context, *GACpOptions) error) *cobra.Command {
	opts := &GACpOptions{GAOptions: GAOptions{GlobalOptions: g}}
	c := &cobra.Command{
		Use:   "cp [-s ADDR] SRC DST",
		Short: "Copy a file into or out of the guest",
		Long: `Copy a file into or out of the guest through the agent (guest-file-open,
-read or -write, -close), a chunk at a time: a big file needs no big
buffer. As with scp, :PATH names the guest's side, which must be an
absolute path; the other side is a local path, or - for stdin or stdout.
A guest file being written is created or truncated; DST a directory (a
guest one ending in /) gets SRC's name, as with cp. The guest file is
closed whatever happens. A local file is written to a temporary file
beside it, renamed over it (its permission bits kept) once the copy
succeeded and removed if it failed: a failure leaves what was there
before. A device or FIFO is written in place, never removed. A local
problem is exit status 1; stdout closed early (| head) is 141, quietly,
the guest file closed. On a terminal, a copy of more than a few MiB
shows its progress on stderr.

` + gaAddressHelp + `

` + gaTimeoutHelp + `

` + exitStatusHelp,
		Example: `  qmpsh ga cp -s /tmp/qga.sock ./app.conf :/etc/app.conf
  qmpsh ga cp -s /tmp/qga.sock :/var/log/syslog ./guest-syslog
  qmpsh ga cp -s /tmp/qga.sock :/etc/os-release -`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageErrorf("ga cp takes SRC and DST, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			opts.Src, opts.Dst = args[0], args[1]
			return runF(c.Context(), opts)
		},
	}
	opts.addressFlag(c)
	return c
}

// progressMin is the smallest copy that shows a progress bar.
const progressMin = 8 << 20

// ExitBrokenPipe is ga cp's exit status when its stdout was closed
// before the copy ended (| head): that of a program SIGPIPE killed, as a
// shell reports it, but with the guest file closed first.
const ExitBrokenPipe = 128 + int(syscall.SIGPIPE)

func gaCpRun(ctx context.Context, opts *GACpOptions) (err error) {
	ctx, addr, err := opts.start(ctx)
	if err != nil {
		return err
	}
	guestSrc, in := strings.CutPrefix(opts.Src, ":")
	guestDst, out := strings.CutPrefix(opts.Dst, ":")
	switch {
	case in == out:
		return usageErrorf("ga cp: exactly one of SRC and DST must be a guest path (:PATH)")
	case in && !strings.HasPrefix(guestSrc, "/"), out && !strings.HasPrefix(guestDst, "/"):
		return usageErrorf("ga cp: a guest path must be absolute, :/PATH")
	}
	// As with cp and scp, a directory as DST gets SRC's name.
	switch {
	case out && strings.HasSuffix(guestDst, "/") && opts.Src != "-":
		guestDst += filepath.Base(opts.Src)
	case in && opts.Dst != "-":
		if fi, err := os.Stat(opts.Dst); err == nil && fi.IsDir() {
			opts.Dst = filepath.Join(opts.Dst, path.Base(guestSrc))
		}
	}

	// Check the local side first: a local mistake sends nothing. What
	// is written locally is only opened once the guest file has been
	// read from, and a failure leaves what was there before.
	var dst *localDest
	var src io.Reader
	var size int64 = -1
	switch {
	case in && opts.Dst == "-":
		dst = &localDest{w: opts.IO.Out, stdout: true}
		// Writing to a closed pipe must fail, for the guest file to be
		// closed, not kill qmpsh (Go's default for stdout).
		stopPipe := opts.Signals(make(chan os.Signal, 1), syscall.SIGPIPE)
		defer stopPipe()
	case in:
		if dst, err = newLocalDest(opts.Dst); err != nil {
			return err
		}
		defer func() {
			if err != nil {
				dst.abort()
			}
		}()
	case opts.Src == "-":
		src = &localReader{r: opts.IO.In, name: "standard input"}
	default:
		f, err := os.Open(opts.Src)
		if err != nil {
			return localFailure("cannot open", opts.Src, err)
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return localFailure("cannot open", opts.Src, err)
		}
		if fi.IsDir() {
			return &ExitError{Code: ExitQMPError, Err: fmt.Errorf("ga cp: %s is a directory; give a file (ga cp copies one file)", opts.Src)}
		}
		if fi.Mode().IsRegular() {
			size = fi.Size()
		}
		src = &localReader{r: f, name: opts.Src}
	}

	ctx, client, hangUp, err := opts.dialStoppable(ctx, addr)
	if err != nil {
		return err
	}
	defer hangUp()

	var progress func(int64)
	if opts.IO.ErrTTY {
		var finish func()
		progress, finish = copyProgress(opts.IO.ErrOut, size)
		defer finish()
	}
	if in {
		_, err = client.ReadFile(ctx, guestSrc, dst, progress)
		if err == nil {
			err = dst.commit()
		}
	} else {
		_, err = client.WriteFile(ctx, guestDst, src, progress)
	}
	return gaCpError(ctx, addr, err)
}

// gaCpError is the exit a copy's err makes: a local failure is 1, a
// closed stdout ExitBrokenPipe, quietly, an interruption 128+N; the rest
// is the agent's (gaError).
func gaCpError(ctx context.Context, addr string, err error) error {
	var le *localError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &le) && le.stdout && errors.Is(le.err, syscall.EPIPE):
		return &ExitError{Code: ExitBrokenPipe, Err: err, quiet: true}
	case errors.As(err, &le):
		return &ExitError{Code: ExitQMPError, Err: le}
	}
	return gaError(addr, interruptedExit(ctx, err, "copying"))
}

// localError is a failure on ga cp's local side.
type localError struct {
	msg    string
	err    error
	stdout bool // writing standard output
}

func (e *localError) Error() string { return e.msg }
func (e *localError) Unwrap() error { return e.err }

// localFailure says that doing (cannot open, writing...) name failed,
// in a line with what to do when errno says it.
func localFailure(doing, name string, err error) *localError {
	cause := err
	var pe *os.PathError
	if errors.As(err, &pe) { // its op and path repeat ours
		cause = pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		cause = le.Err
	}
	msg := fmt.Sprintf("ga cp: %s %s: %v", doing, name, cause)
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		msg += "; free some space and copy again"
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EROFS):
		msg += "; check its permissions, or copy elsewhere"
	}
	return &localError{msg: msg, err: err}
}

// localReader reads ga cp's local source; its errors are local
// failures that name it.
type localReader struct {
	r    io.Reader
	name string
}

func (r *localReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = localFailure("reading", r.name, err)
	}
	return n, err
}

// localDest is where ga cp writes a guest file. Nothing is opened until
// the first write, which comes once the guest file has been opened and
// read, or commit, for an empty one. A regular file (or a new one) is
// written to a temporary file beside it, renamed over it by commit, and
// removed by abort: a failed copy leaves what was there before. Anything
// else (a device, a FIFO, stdout) is written where it is and never
// removed.
type localDest struct {
	name    string    // as given, for messages
	target  string    // the file replaced: name, symlinks resolved
	w       io.Writer // what is written to, once opened
	stdout  bool      // w is standard output
	f       *os.File
	tmp     string      // the temporary file, "" while none
	inPlace bool        // not a regular file: written where it is
	exists  bool        // target is a regular file that exists
	perm    os.FileMode // its permission bits
	uid     int         // its owner, -1 when unknown
	gid     int
}

// newLocalDest checks that name can be written, before anything is sent.
func newLocalDest(name string) (*localDest, error) {
	d := &localDest{name: name, target: name, uid: -1, gid: -1}
	fi, err := os.Stat(name)
	switch {
	case err == nil && fi.IsDir():
		return nil, &ExitError{Code: ExitQMPError, Err: fmt.Errorf("ga cp: %s is a directory; give a file, or remove it", name)}
	case err == nil && !fi.Mode().IsRegular():
		d.inPlace = true
		if err := unix.Access(name, unix.W_OK); err != nil {
			return nil, localFailure("cannot write", name, err)
		}
		return d, nil
	case err == nil:
		if d.target, err = filepath.EvalSymlinks(name); err != nil {
			return nil, localFailure("cannot write", name, err)
		}
		if err := unix.Access(name, unix.W_OK); err != nil {
			return nil, localFailure("cannot write", name, err)
		}
		d.exists, d.perm = true, fi.Mode().Perm()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			d.uid, d.gid = int(st.Uid), int(st.Gid)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, localFailure("cannot write", name, err)
	}
	// The temporary file goes beside the target.
	dir := filepath.Dir(d.target)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, &ExitError{Code: ExitQMPError, Err: fmt.Errorf("ga cp: cannot create %s: no directory %s; create it first", name, dir)}
	}
	if err := unix.Access(dir, unix.W_OK); err != nil {
		return nil, localFailure("cannot create a file in", dir, err)
	}
	return d, nil
}

// open opens what d writes to.
func (d *localDest) open() error {
	if d.inPlace {
		f, err := os.OpenFile(d.target, os.O_WRONLY, 0)
		if err != nil {
			return localFailure("cannot open", d.name, err)
		}
		d.f, d.w = f, f
		return nil
	}
	dir, base := filepath.Split(d.target)
	perm := os.FileMode(0o666) // a new file's, less the umask, as cp makes it
	if d.exists {
		perm = 0o600 // until it has the target's own
	}
	var f *os.File
	var err error
	for range 10 {
		var r [6]byte
		rand.Read(r[:])
		d.tmp = filepath.Join(dir, "."+base+".qmpsh-"+hex.EncodeToString(r[:]))
		f, err = os.OpenFile(d.tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		d.tmp = ""
		return localFailure("cannot create a file in", filepath.Clean(dir), err)
	}
	d.f, d.w = f, f
	if d.exists {
		f.Chown(d.uid, d.gid) // as far as we may: root keeps a user's file theirs
		if err := f.Chmod(d.perm); err != nil {
			return localFailure("cannot write", d.name, err)
		}
	}
	return nil
}

// Write writes p, opening d first if need be.
func (d *localDest) Write(p []byte) (int, error) {
	if d.w == nil {
		if err := d.open(); err != nil {
			return 0, err
		}
	}
	n, err := d.w.Write(p)
	if err != nil {
		if d.stdout {
			le := localFailure("writing", "standard output", err)
			le.stdout = true
			return n, le
		}
		return n, localFailure("writing", d.name, err)
	}
	return n, nil
}

// commit ends a copy that succeeded: the file is in its place.
func (d *localDest) commit() error {
	if d.stdout {
		return nil
	}
	if d.w == nil { // an empty file
		if err := d.open(); err != nil {
			return err
		}
	}
	f := d.f
	d.f = nil
	if err := f.Close(); err != nil {
		return localFailure("writing", d.name, err)
	}
	if d.tmp != "" {
		if err := os.Rename(d.tmp, d.target); err != nil {
			return localFailure("cannot replace", d.name, err)
		}
		d.tmp = ""
	}
	return nil
}

// abort ends a copy that failed: the temporary file is removed, what was
// there before left alone.
func (d *localDest) abort() {
	if d.f != nil {
		d.f.Close()
		d.f = nil
	}
	if d.tmp != "" {
		os.Remove(d.tmp)
		d.tmp = ""
	}
}

// copyProgress shows a copy's progress on w, a terminal, with the bar
// job wait uses (newBar): from progressMin bytes on, of total bytes (no
// percent or time left when the total is unknown, -1), redrawn at most
// every copyRedraw. update is the copy's progress callback; finish ends
// the line, if a bar was shown.
func copyProgress(w io.Writer, total int64) (update func(int64), finish func()) {
	var b *bar
	var drawn time.Time
	var last int64
	update = func(n int64) {
		if n < progressMin && b == nil {
			return
		}
		last = n
		if b == nil {
			b = newBar(w, total, false)
		}
		if now := time.Now(); now.Sub(drawn) >= copyRedraw {
			drawn = now
			b.draw(n, "", false)
		}
	}
	finish = func() {
		if b != nil {
			b.draw(last, "", true) // the last count, and the end of its line
		}
	}
	return update, finish
}

// copyRedraw spaces a copy's redraws: its callback comes for every chunk.
const copyRedraw = 100 * time.Millisecond
