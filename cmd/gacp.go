package cmd

import (
	"context"
	"fmt"
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
	if ctx == nil {
		ctx = context.Background()
	}
	if err := opts.check(); err != nil {
		return err
	}
	addr, err := opts.address()
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

	client, closeLog, err := opts.newGAClient(opts.IO.ErrOut)
	if err != nil {
		return err
	}
	defer closeLog()
	ctx, stop := opts.signalContext(ctx, stopSignals...)
	defer stop()
	if err := opts.gaConnect(ctx, client, addr); err != nil {
		return err
	}
	defer client.Disconnect()

	var bar *progressBar
	if opts.IO.ErrTTY {
		bar = &progressBar{w: opts.IO.ErrOut, total: size, start: time.Now()}
		defer bar.finish()
	}
	if in {
		var w io.Writer = opts.IO.Out
		if local != nil {
			w = local
		}
		_, err = client.ReadFile(ctx, guestSrc, w, bar.update)
	} else {
		var r io.Reader = opts.IO.In
		if local != nil {
			r = local
		}
		_, err = client.WriteFile(ctx, guestDst, r, bar.update)
	}
	if err != nil {
		return gaError(addr, interrupted(ctx, err, "copying"))
	}
	return nil
}

// progressBar shows a copy's progress on a terminal, on one line
// redrawn in place, from progressMin bytes on and at most ten times a
// second. A nil bar shows nothing.
type progressBar struct {
	w     io.Writer
	total int64 // -1 when unknown
	start time.Time
	last  time.Time
	shown bool
	n     int64
}

func (b *progressBar) update(n int64) {
	if b == nil {
		return
	}
	b.n = n
	now := time.Now()
	if n < progressMin || now.Sub(b.last) < 100*time.Millisecond {
		return
	}
	b.last = now
	b.draw(now)
}

func (b *progressBar) draw(now time.Time) {
	b.shown = true
	const width = 30
	mib := float64(b.n) / (1 << 20)
	rate := mib / max(now.Sub(b.start).Seconds(), 1e-3)
	if b.total > 0 {
		frac := min(float64(b.n)/float64(b.total), 1)
		fill := int(frac * width)
		fmt.Fprintf(b.w, "\r[%s%s] %3.0f%% %.1f/%.1f MiB %.1f MiB/s ", strings.Repeat("=", fill), strings.Repeat(" ", width-fill),
			frac*100, mib, float64(b.total)/(1<<20), rate)
		return
	}
	fmt.Fprintf(b.w, "\r%.1f MiB %.1f MiB/s ", mib, rate)
}

// finish draws the final state and ends the line, if the bar was shown.
func (b *progressBar) finish() {
	if b == nil || !b.shown {
		return
	}
	b.draw(time.Now())
	fmt.Fprintln(b.w)
}
