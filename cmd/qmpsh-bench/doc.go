// Qmpsh-bench measures qmpsh beside floors run in the same session, and
// prints the tables of README.md's Performance section. It is what
// `make bench` runs:
//
//	go run ./cmd/qmpsh-bench qemu [flags]   # the library on real QEMU beside a raw floor and go-qemu, as processes
//	go run ./cmd/qmpsh-bench ratio [flags]  # the client's Go benchmarks, as client/floor ratios
//	go run ./cmd/qmpsh-bench proc [flags]   # qmpsh exec as a whole process beside a raw program
//	go run ./cmd/qmpsh-bench ga [flags]     # qmpsh ga run and cp beside a raw program, on qemu-ga
//	go run ./cmd/qmpsh-bench proxy [flags]  # query-status through qmpsh proxy beside a direct client
//
// Each subcommand takes -h for its flags. Real QEMU is started with
// pkg/qmp/qmptest's launcher, the one the integration tests use. The exit
// status is 1 when something fails to run, or, with -strict, when a
// result misses its target; 2 for a usage error.
//
// # Concurrency
//
// A subcommand runs on the main goroutine; what it starts, it waits for
// before it returns, but for the signal watcher.
//
//	goroutine               started by              stopped by
//	signal watcher          main                    a signal (it runs the exits and ends the
//	                                                program), or the program's end
//	8 callers, per round    proxyMain               their calls ending; the round waits
//	a child's reaper or     proc's idle shells      the child exiting, or its output ending;
//	output drain            and proxy's qmpsh proxy the subcommand kills or ends the child
//	                                                first, and waits for the reaper
//	a child's kill timer    time.AfterFunc, for a   firing (it kills a child that outran
//	                        child proc measures     runTimeout), or stopped when the child ends
//
// Who may touch what:
//
//	lock                    guards
//	exitsMu                 exits, what to undo before exiting (QEMU, temporary
//	                        directories), which the signal watcher may run while main
//	                        runs them
package main
