package cmd

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// progressEvery is how often job wait and migrate --wait ask QEMU for
// progress while drawing a bar. Piped, they ask only at status changes.
const progressEvery = 200 * time.Millisecond

// barCells is the width of a bar between its borders. It is fixed, not
// the terminal's: a bar that filled the line would wrap beside a long
// status.
const barCells = 28

// bar is a progress bar of bytes, drawn over itself on a terminal and
// only when draw is called: no goroutine of its own, no terminal
// queries. It is hand-written rather than a library's because every
// library measured cost each qmpsh start, qmpsh exec included, about a
// millisecond of package initialisation for the few elements drawn here.
//
// With a total (above zero) it draws
//
//	48% |██████████████              | 518.00 MB/1.07 GB 287.00 MB/s 1s left STATUS
//
// and without one a spinner, the bytes so far and the rate. The rate is
// the average since the bar's first draw, so progress made before it
// (a job found half done) does not count as made at once.
type bar struct {
	w     io.Writer
	si    bool // kB, MB... rather than KiB, MiB...
	total int64
	now   func() time.Time

	start     time.Time // the first draw
	startDone int64     // progress at the first draw
	spin      int       // the spinner's next frame
}

// newBar returns a bar of total bytes (-1 or 0: unknown) drawn on w, a
// terminal. si chooses kB/MB over KiB/MiB.
func newBar(w io.Writer, total int64, si bool) *bar {
	return &bar{w: w, si: si, total: total, now: time.Now}
}

// draw draws done bytes and status over the line's previous drawing;
// final ends the line, showing the time taken instead of the time left.
func (b *bar) draw(done int64, status string, final bool) {
	now := b.now()
	if b.start.IsZero() {
		b.start, b.startDone = now, done
	}
	elapsed := now.Sub(b.start)
	speed := "? B/s"
	rate := 0.0
	if elapsed > 0 && done > b.startDone {
		rate = float64(done-b.startDone) / elapsed.Seconds()
		speed = formatBytes(int64(rate), b.si) + "/s"
	}
	var s strings.Builder
	s.WriteByte('\r')
	if b.total > 0 {
		frac := min(max(float64(done)/float64(b.total), 0), 1)
		filled := int(math.Ceil(frac * barCells))
		fmt.Fprintf(&s, "%3.0f%% |%s%s| %s/%s %s ", frac*100,
			strings.Repeat("█", filled), strings.Repeat(" ", barCells-filled),
			formatBytes(done, b.si), formatBytes(b.total, b.si), speed)
		switch {
		case final:
			s.WriteString(elapsed.Round(100 * time.Millisecond).String())
		case rate > 0 && float64(b.total-done)/rate < maxLeft.Seconds():
			left := time.Duration(max(float64(b.total-done)/rate, 0)) * time.Second
			s.WriteString(left.String() + " left")
		default:
			s.WriteString("? left")
		}
	} else {
		fmt.Fprintf(&s, "%c %s %s", `|/-\`[b.spin%4], formatBytes(done, b.si), speed)
		b.spin++
	}
	if status != "" {
		s.WriteString(" " + status)
	}
	// Clear to the end of the line: a shorter status drawn over a
	// longer one leaves nothing behind.
	s.WriteString("\x1b[0K")
	if final {
		s.WriteByte('\n')
	}
	io.WriteString(b.w, s.String())
}

// maxLeft is the longest time left a bar shows; beyond it, "? left": at a
// rate that slow the estimate means nothing (and would overflow).
const maxLeft = 1000 * time.Hour

// formatBytes writes n bytes with two decimals in the largest unit it
// reaches: 64.00 MiB, or with si, 67.11 MB.
func formatBytes(n int64, si bool) string {
	base, units := 1024.0, []string{"KiB", "MiB", "GiB", "TiB"}
	if si {
		base, units = 1000, []string{"kB", "MB", "GB", "TB"}
	}
	if float64(n) < base {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	unit := ""
	for _, u := range units {
		if v < base {
			break
		}
		v, unit = v/base, u
	}
	return fmt.Sprintf("%.2f %s", v, unit)
}

// reporter shows long-running work: on a terminal, a progress bar; on a
// pipe, one JSON line per status change and a final line with the
// outcome, nothing else.
type reporter struct {
	out     io.Writer
	tty     bool
	bar     *bar
	current int64  // the progress shown last
	desc    string // the bar's status shown last
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
	r.desc = what + " " + status
	if extra != "" {
		r.desc += " (" + extra + ")"
	}
	if r.bar == nil {
		r.bar = newBar(r.out, 1, true)
	}
	// The bar's total stays one above the progress until finish fills
	// it, as a mirror's total can grow after it has caught up: 100% and
	// a full bar only ever show done (or all but a byte of it).
	r.bar.total = max(total, current) + 1
	r.current = current
	r.bar.draw(current, r.desc, false)
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
			r.bar.total = n
			r.bar.draw(n, r.desc, true)
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
