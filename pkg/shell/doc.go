// Package shell is the interactive QMP shell of qmpsh: the line syntax, the
// read-eval-print loop, and output formatting.
//
// The line syntax is that of QEMU's qmp-shell (python/qemu/qmp/qmp_shell.py):
//
//	command-name [key=value ...]
//
// Values are guessed without a schema: integers, true/false, JSON (or
// Python literal) objects and arrays, and strings otherwise. Dotted keys
// build nested objects. A line starting with '{' is sent as raw JSON, and
// qmp-shell's multi-line "transaction(" block is built by Transaction.
//
// # Concurrency
//
// Run's goroutine, the loop, reads lines and runs commands. Beside it:
//
//	goroutine   started by                 stopped by
//	printer     Run (startPrinter)         Run's return, after it has printed what had arrived
//	redialer    Run, with Config.Reconnect Run's return (its context is cancelled, then waited for)
//
// The printer prints events (from a qmp.Listener) and, without
// Reconnect, the end of the session, which it learns from
// Client.RunstateChanged. The redialer waits with
// Client.WaitForStateChange for the session to end, then reconnects.
//
// Who may touch what:
//
//	lock or owner         guards
//	the loop              tx, failed, lost: the state of the session as a script sees it
//	promptMu              basePrompt and the editor's prompt, set by the loop (mode)
//	                      and the redialer (connection down)
//	redialState           down (atomic); its mu guards why the connection was lost and
//	                      the attempts so far, written by the redialer, read by the loop
//	shell.flush           the loop asks the printer, over it, to print the events that
//	                      have arrived before it prints a reply, so they come first
//	Completer.mu          the schema, fetched once per connection
package shell
