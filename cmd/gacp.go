package cmd

import (
	"context"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
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
closed whatever happens; a local file left half-written by a failure is
removed. On a terminal, a copy of more than a few MiB shows its
progress on stderr.

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

	// Open the local side first: a local mistake sends nothing.
	var local *os.File
	var size int64 = -1
	removeOnFailure := ""
	switch {
	case in && opts.Dst == "-":
	case in:
		if local, err = os.Create(opts.Dst); err != nil {
			return usageErrorf("ga cp: %v", err)
		}
		removeOnFailure = opts.Dst
		defer func() {
			if cerr := local.Close(); err == nil && cerr != nil {
				err = cerr
			}
			if err != nil {
				os.Remove(removeOnFailure)
			}
		}()
	case opts.Src == "-":
	default:
		if local, err = os.Open(opts.Src); err != nil {
			return usageErrorf("ga cp: %v", err)
		}
		defer local.Close()
		if fi, err := local.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
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
		var w io.Writer = opts.IO.Out
		if local != nil {
			w = local
		}
		_, err = client.ReadFile(ctx, guestSrc, w, progress)
	} else {
		var r io.Reader = opts.IO.In
		if local != nil {
			r = local
		}
		_, err = client.WriteFile(ctx, guestDst, r, progress)
	}
	if err != nil {
		return gaError(addr, interrupted(ctx, err, "copying"))
	}
	return nil
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
