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

// An error reply missing a class or a description says which, and shows
// what was sent when it is known, rather than ": ".
func TestExecuteErrorWithoutClass(t *testing.T) {
	for _, tc := range []struct {
		e    ExecuteError
		want string
	}{
		{ExecuteError{Class: "GenericError", Desc: "boom"}, "GenericError: boom"},
		{ExecuteError{Command: "cont", Sent: "{}"}, "the server answered cont with an error without a class or a description (not QMP as QEMU speaks it): {}"},
		{ExecuteError{Class: "GenericError", Sent: `{"class":"GenericError"}`}, `the server answered with an error without a description (not QMP as QEMU speaks it): {"class":"GenericError"}`},
		{ExecuteError{Command: "guest-ping", Desc: "x"}, "the server answered guest-ping with an error without a class (not QMP as QEMU speaks it)"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%+v: Error() = %q\nwant %q", tc.e, got, tc.want)
		}
	}
}
