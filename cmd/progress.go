package cmd

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progressEvery is how often job wait and migrate --wait ask QEMU for
// progress while drawing a bar. Piped, they ask only at status changes.
const progressEvery = 200 * time.Millisecond

// reporter shows long-running work: on a terminal, a progress bar; on a
// pipe, one JSON line per status change and a final line with the
// outcome, nothing else.
type reporter struct {
	out     io.Writer
	tty     bool
	bar     *progressbar.ProgressBar
	current int64  // the progress shown last
	last    string // the status shown last
}

func newReporter(ios *IOStreams) *reporter {
	return &reporter{out: ios.Out, tty: ios.OutTTY}
}

// update shows a status and the progress, current of total bytes. line
// is what a pipe gets for a new status; extra, if not empty, follows the
// bar's numbers on a terminal.
func (r *reporter) update(what, status string, current, total int64, extra string, line any) {
	if !r.tty {
		if status != r.last {
			r.last = status
			r.writeJSON(line)
		}
		return
	}
	r.last = status
	desc := what + " " + status
	if extra != "" {
		desc += " (" + extra + ")"
	}
	// A full bar is never drawn again, though a mirror's total can grow
	// after it has caught up: the bar's maximum stays one above the
	// progress until finish fills it.
	limit := max(total, current) + 1
	r.current = current
	if r.bar == nil {
		r.bar = progressbar.NewOptions64(limit,
			progressbar.OptionSetWriter(r.out),
			progressbar.OptionSetWidth(30),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionShowDescriptionAtLineEnd(),
			progressbar.OptionUseANSICodes(true),
			// Its spinner would start a goroutine; the length is known.
			progressbar.OptionSetSpinnerChangeInterval(0),
		)
	}
	if r.bar.GetMax64() != limit {
		r.bar.ChangeMax64(limit)
	}
	r.bar.Set64(current)
	r.bar.Describe(desc)
}

// finish ends the bar, if any, full if the work succeeded, and shows the
// outcome: on a terminal a line of text, on a pipe line as JSON.
func (r *reporter) finish(succeeded bool, text string, line any) {
	if !r.tty {
		r.writeJSON(line)
		return
	}
	if r.bar != nil {
		if succeeded {
			n := max(r.current, 1)
			r.bar.ChangeMax64(n)
			r.bar.Set64(n)
		}
		r.bar.Exit() // a failed job's bar stays where it was
		fmt.Fprintln(r.out)
	}
	fmt.Fprintln(r.out, text)
}

func (r *reporter) writeJSON(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	r.out.Write(append(b, '\n'))
}
