// Package gatest starts the real QEMU guest agent (qemu-ga) for tests and
// benchmarks, and serves a fake one for the faults a real agent cannot be
// made to show (silence, a command without success-response that must
// not be run on the host).
//
// The real agent runs on the host itself: what it runs and writes, it
// runs and writes on this machine, as the user running the tests. Tests
// must keep to temporary directories and harmless programs, and must
// never send guest-shutdown, guest-suspend-* or guest-fsfreeze-* to it.
package gatest
