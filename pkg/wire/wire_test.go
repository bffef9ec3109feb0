package wire

import (
	"testing"
	"time"
)

// TestRoundBound: a bound reached up to a few milliseconds late reads as
// the bound the caller set.
func TestRoundBound(t *testing.T) {
	for _, tc := range []struct{ d, want time.Duration }{
		{100*time.Millisecond - 2*time.Millisecond, 100 * time.Millisecond},
		{100*time.Millisecond - 30*time.Microsecond, 100 * time.Millisecond},
		{10*time.Second - 300*time.Microsecond, 10 * time.Second},
		{time.Second - 40*time.Millisecond, time.Second},
		{300*time.Millisecond - 3*time.Millisecond, 300 * time.Millisecond},
		{50*time.Millisecond - 200*time.Microsecond, 50 * time.Millisecond},
		{2500*time.Millisecond - 5*time.Millisecond, 2500 * time.Millisecond},
	} {
		if got := RoundBound(tc.d); got != tc.want {
			t.Errorf("RoundBound(%v) = %v, want %v", tc.d, got, tc.want)
		}
	}
}
