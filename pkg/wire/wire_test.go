package wire

import (
	"slices"
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

// NextID cycles through one-digit ids while fewer than 9 are pending,
// skipping the busy ones, and goes to two digits only when it must.
func TestNextID(t *testing.T) {
	pending := map[uint64]bool{0: true, 2: true}
	var last uint64
	var got []uint64
	for range 9 {
		id := NextID(pending, &last)
		got = append(got, id)
		pending[id] = true
	}
	// 0 and 2 taken: 1, then 3..9, and 10 only once 10 are pending.
	want := []uint64{1, 3, 4, 5, 6, 7, 8, 9, 10}
	if !slices.Equal(got, want) {
		t.Fatalf("ids %v, want %v", got, want)
	}
	clear(pending)
	pending[5] = true
	last = 4
	if id := NextID(pending, &last); id != 6 {
		t.Fatalf("after 4 with 5 busy: %d, want 6", id)
	}
	last = 9
	if id := NextID(pending, &last); id != 1 {
		t.Fatalf("after 9 with one pending: %d, want 1 (back round)", id)
	}
}

// QEMU refuses a message whose tokens add up to more than 64 MiB.
func TestQEMURefusesTooLong(t *testing.T) {
	v := make([]byte, MaxTokenBytes-80)
	copy(v, `{"a":"`)
	for i := 6; i < len(v)-2; i++ {
		v[i] = 'x'
	}
	copy(v[len(v)-2:], `"}`)
	if why := QEMURefuses(v, 4); why != "" {
		t.Fatalf("a message %d bytes short of the limit with an id: %s", 80, why)
	}
	if why := QEMURefuses(v, 5); why != "JSON token size limit exceeded" {
		t.Fatalf("a message beyond the limit: %q, want the token size limit", why)
	}
}
