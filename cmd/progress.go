package cmd

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	pb "github.com/cheggaaa/pb/v3"
)

// progressEvery is how often job wait and migrate --wait ask QEMU for
// progress while drawing a bar. Piped, they ask only at status changes.
const progressEvery = 200 * time.Millisecond

// barTemplate is what a bar shows: percent, bar, current/total bytes,
// rate, time left and the status. The bar is 30 columns wide whatever the
// terminal (pb's own "bar" grows to fill the line, which wraps beside a
// long status). The line ends by clearing to its end, so that a shorter
// status drawn over a longer one leaves nothing behind.
const barTemplate = `{{percent . "%3.0f%%"}} {{bar30 . "|" "█" "█" " " "|"}} ` +
	`{{counters . "%s/%s"}} {{speed . "%s/s" "? B/s"}} {{rtime . "%s left" "%s" "? left"}}` + barStatus

// spinTemplate is barTemplate for an unknown total: a spinner, the bytes
// so far and the rate.
const spinTemplate = `{{cycle . "|" "/" "-" "\\"}} {{counters . "" "%[1]s"}} {{speed . "%s/s" "? B/s"}}` + barStatus

const barStatus = `{{with string . "status"}} {{.}}{{end}}` + "\x1b[0K"

// registerBar adds to pb the fixed-width bar barTemplate names. pb keeps
// its elements in a global table, so this runs once, and only when a bar
// is drawn.
var registerBar = sync.OnceFunc(func() { pb.RegisterElement("bar30", pb.ElementBar, false) })

// newBar returns a bar of total bytes drawn on w, a terminal, only when
// Write is called: pb's own refresh would start a goroutine and draw at
// times that are not the program's. si chooses kB/MB over KiB/MiB.
func newBar(w io.Writer, total int64, si bool) *pb.ProgressBar {
	registerBar()
	bar := pb.New64(total)
	bar.SetWriter(w)
	if total > 0 {
		bar.SetTemplateString(barTemplate)
	} else {
		bar.SetTemplateString(spinTemplate)
	}
	bar.Set(pb.Static, true)
	bar.Set(pb.Bytes, true)
	bar.Set(pb.SIBytesPrefix, si)
	// Each draw starts at the line's beginning; Write after Finish ends
	// the line. Color keeps the clear-to-end sequence (the plain writer
	// would strip it), and Terminal stays off so that pb does not pad the
	// line to the terminal's width, which it asks /dev/tty for.
	bar.Set(pb.ReturnSymbol, "\r")
	bar.Set(pb.Color, true)
	bar.Set(pb.Terminal, false)
	bar.Start()
	return bar
}

// reporter shows long-running work: on a terminal, a progress bar; on a
// pipe, one JSON line per status change and a final line with the
// outcome, nothing else.
type reporter struct {
	out     io.Writer
	tty     bool
	bar     *pb.ProgressBar
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
		r.bar = newBar(r.out, limit, true)
	}
	r.bar.SetTotal(limit)
	r.bar.SetCurrent(current)
	r.bar.Set("status", desc)
	r.bar.Write()
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
			r.bar.SetTotal(n)
			r.bar.SetCurrent(n)
			r.bar.Finish()
			r.bar.Write() // the full bar, and the end of its line
		} else {
			fmt.Fprintln(r.out) // a failed job's bar stays where it was
		}
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
