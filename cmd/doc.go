// Package cmd is the qmpsh command line: cobra commands that parse flags,
// connect a pkg/qmp client, and hand over to pkg/shell or print one
// result. Each command is built on a Factory (streams, environment,
// signals, clients), fills an options struct from its flags and hands it
// to its run function, so tests run commands against buffers and a fake
// environment.
//
// # Concurrency
//
// A command runs on the goroutine cobra calls it on. Beside it:
//
//	goroutine                started by                    stopped by
//	signal watcher           Factory.signalContext (accept, the stop function it returns (it waits),
//	                         connect, proxy, wrap, job      or the signal, which cancels the context
//	                         wait, migrate)
//	fan-out worker, one per  fanOut (exec with many -s),   its target's outcome; fanOut waits for all
//	target                   events with many -s           (events: each target's stream ending)
//	QEMU's reaper            startQEMU (wrap); it holds    QEMU exiting (closes qemuProcess.done);
//	                         its OS thread for Pdeathsig   wrap stops QEMU before it returns
//	QEMU-exit watcher        acceptQEMU, once QEMU starts  QEMU exiting, or the accept ending
//	end-on-exit watcher      endOnExit (wrap's shell)      QEMU exiting, or the input ending (ended)
//	stdin reader, per Read   cancelableReader.Read (wrap)  the read returning; a cancelled Read
//	                                                       returns at once and leaves it blocked on
//	                                                       stdin until a byte or EOF comes
//
// Who may touch what:
//
//	lock or owner            guards
//	traffic.mu               the -v display and the --log file, and stderr lines of the
//	                         client's log (lineHandler), so that lines never interleave
//	proxyOutput.mu           the same for the proxy: its notices, traffic and log lines
//	fanOut's mu              stdout's lines and the worst exit status of the targets
//	events' mu and wmu       the same for events with many -s: mu its stdout lines, wmu
//	                         the worst exit status
//	cancelableReader.mu      one Read at a time; cancelled (closed once) ends them all
//	qemuProcess.done         QEMU's exit status (err), written by the reaper before it
//	                         closes done
package cmd
