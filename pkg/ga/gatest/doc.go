// Package gatest starts the real QEMU guest agent (qemu-ga) for tests and
// benchmarks, and serves a fake one for the faults a real agent cannot be
// made to show (silence, a command without success-response that must
// not be run on the host).
//
// The real agent runs on the host itself: what it runs and writes, it
// runs and writes on this machine, as the user running the tests. Tests
// must keep to temporary directories and harmless programs, and must
// never send guest-shutdown, guest-suspend-* or guest-fsfreeze-* to it.
//
// # Concurrency
//
//	goroutine               started by              stopped by
//	FakeAgent.serve         StartFake               the test's cleanup closing the listener;
//	                                                the cleanup waits (FakeAgent.wg)
//	a handler, per          FakeAgent.serve         its client hanging up, or the cleanup
//	connection                                      closing every connection; waited for alike
//	an agent's waiter       Agent's start (and      qemu-ga exiting: it reaps the process and
//	                        Restart)                closes done, which Kill and the cleanup
//	                                                wait for
//
// Who may touch what:
//
//	lock                    guards
//	FakeAgent.mu            the set of open connections, which the cleanup closes, and
//	                        closed, so that one accepted after that is closed at once
//	Agent.mu                the current qemu-ga process, its output and its done
//	                        channel, which a restart replaces
package gatest
