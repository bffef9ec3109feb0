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
	out  io.Writer
	tty  bool
	bar  *progressbar.ProgressBar
	last string // the status shown last
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
	total = max(total, 1, current) // the bar wants a positive maximum
	if r.bar == nil {
		r.bar = progressbar.NewOptions64(total,
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
	r.bar.Describe(desc)
	if r.bar.GetMax64() != total {
		r.bar.ChangeMax64(total)
	}
	r.bar.Set64(current)
}

// finish ends the bar, if any, and shows the outcome: on a terminal a
// line of text, on a pipe line as JSON.
func (r *reporter) finish(text string, line any) {
	if !r.tty {
		r.writeJSON(line)
		return
	}
	if r.bar != nil {
		r.bar.Exit() // leaves the bar as it was: a failed job is not at 100%
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
