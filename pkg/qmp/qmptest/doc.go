// Package qmptest provides test infrastructure for code that speaks QMP, the
// QEMU Machine Protocol, in the spirit of net/http/httptest. It is meant to
// be imported only from tests and benchmark programs.
//
// It offers two things:
//
//   - Server, a fake QMP server on a UNIX socket. Its Standard handler
//     behaves like a small QEMU, and custom handlers use Conn to produce
//     the faults a real QEMU will not produce on demand: garbage, half
//     lines, oversize messages, event floods, delayed or reordered replies,
//     abrupt disconnects.
//   - Launchers for real QEMU processes (StartQEMU, StartStorageDaemon,
//     StartQEMUClient) for integration tests. The server-mode ones return
//     only once QEMU has finished starting and its monitor socket accepts
//     connections, and all of them kill and reap QEMU when the test ends.
//     LaunchQEMU and LaunchStorageDaemon are the same launchers for
//     programs that have no testing.TB (the benchmark driver).
//
// The package deliberately imports nothing else from this module, so that
// the QMP client's own tests can use it without an import cycle.
//
// # Concurrency
//
//	goroutine               started by             stopped by
//	Server.acceptLoop       NewServer              Server.Close (closes the listener, waits)
//	a handler, per Conn     Server.acceptLoop      the handler returning; Server.Close closes
//	                        (runs the handler)     every Conn and waits for all of them
//	a sleep, per "sleep"    Standard's Serve       the timer, or Serve returning (done),
//	command                                        which waits for its sleeps
//
// Server.mu guards the set of open Conns and closed. In a Conn, rmu
// serializes ReadRequest and wmu guards the writer and the capabilities
// offered, so that every message reaches the client whole. Launched QEMU
// processes are killed and reaped by the test's cleanup.
package qmptest
