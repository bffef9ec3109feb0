package cmd

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestFormatBytes(t *testing.T) {
	for _, c := range []struct {
		n    int64
		si   bool
		want string
	}{
		{0, false, "0 B"},
		{1023, false, "1023 B"},
		{1024, false, "1.00 KiB"},
		{64 << 20, false, "64.00 MiB"},
		{3 << 40, false, "3.00 TiB"},
		{999, true, "999 B"},
		{518_000_000, true, "518.00 MB"},
		{1_073_741_824, true, "1.07 GB"},
	} {
		if got := formatBytes(c.n, c.si); got != c.want {
			t.Errorf("formatBytes(%d, %v) = %q, want %q", c.n, c.si, got, c.want)
		}
	}
}

// fakeClock is a clock a test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestBarDraw(t *testing.T) {
	var out bytes.Buffer
	clock := &fakeClock{t: time.Unix(1000, 0)}
	b := newBar(&out, 1_000_000_000, true)
	b.now = clock.now
	// The first draw has no rate yet; the progress found then does not
	// count towards it.
	b.draw(100_000_000, "job b0 running", false)
	want := "\r 10% |███                         | 100.00 MB/1.00 GB ? B/s ? left job b0 running\x1b[0K"
	if got := out.String(); got != want {
		t.Fatalf("first draw\n got %q\nwant %q", got, want)
	}
	out.Reset()
	clock.t = clock.t.Add(2 * time.Second)
	b.draw(500_000_000, "job b0 running", false)
	want = "\r 50% |██████████████              | 500.00 MB/1.00 GB 200.00 MB/s 2s left job b0 running\x1b[0K"
	if got := out.String(); got != want {
		t.Fatalf("part done\n got %q\nwant %q", got, want)
	}
	out.Reset()
	clock.t = clock.t.Add(2500 * time.Millisecond)
	b.draw(1_000_000_000, "job b0 concluded", true)
	want = "\r100% |████████████████████████████| 1.00 GB/1.00 GB 200.00 MB/s 4.5s job b0 concluded\x1b[0K\n"
	if got := out.String(); got != want {
		t.Fatalf("final\n got %q\nwant %q", got, want)
	}
}

func TestBarUnknownTotal(t *testing.T) {
	var out bytes.Buffer
	clock := &fakeClock{t: time.Unix(1000, 0)}
	b := newBar(&out, -1, false)
	b.now = clock.now
	b.draw(1<<20, "", false)
	clock.t = clock.t.Add(time.Second)
	b.draw(3<<20, "", false)
	b.draw(3<<20, "", true)
	want := "\r| 1.00 MiB ? B/s\x1b[0K" + "\r/ 3.00 MiB 2.00 MiB/s\x1b[0K" + "\r- 3.00 MiB 2.00 MiB/s\x1b[0K\n"
	if got := out.String(); got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

// A rate too slow for a meaningful estimate shows "? left", not an
// overflowed duration.
func TestBarSlowRate(t *testing.T) {
	var out bytes.Buffer
	clock := &fakeClock{t: time.Unix(1000, 0)}
	b := newBar(&out, 1<<40, false)
	b.now = clock.now
	b.draw(0, "", false)
	clock.t = clock.t.Add(time.Second)
	out.Reset()
	b.draw(100, "", false)
	if got := out.String(); !strings.Contains(got, " 100 B/s ? left") {
		t.Errorf("got %q, want the rate and ? left", got)
	}
	// Overshooting the total leaves no time, not a negative one.
	b = newBar(&out, 1000, true)
	b.now = clock.now
	b.draw(0, "", false)
	clock.t = clock.t.Add(time.Second)
	out.Reset()
	b.draw(2000, "", false)
	if got := out.String(); !strings.Contains(got, " 0s left") {
		t.Errorf("got %q, want 0s left", got)
	}
}
