// Package shell is the interactive QMP shell of qmpsh: the line syntax, the
// read-eval-print loop, and output formatting.
//
// The line syntax is that of QEMU's qmp-shell (python/qemu/qmp/qmp_shell.py):
//
//	command-name [key=value ...]
//
// A line is lexed here (quotes, JSON values, dotted keys kept as typed)
// into a command name and key=value arguments; their values are typed by
// pkg/qapi, from the server's schema when there is one, else with
// qmp-shell's guessing (integers, true/false, JSON or Python literal
// objects and arrays, strings otherwise). A line starting with '{' is sent
// as raw JSON, and qmp-shell's "transaction(" block, on one line or many,
// becomes a transaction command.
//
// # Concurrency
//
// Run's goroutine, the loop, reads lines and runs commands. Beside it:
//
//	goroutine   started by                 stopped by
//	printer     Run (startPrinter)         Run's return, after it has printed what had arrived
//	redialer    Run, with Config.Reconnect Run's return (its context is cancelled, then waited for)
//	interrupt   callContext, per command   the command's cancel (waits for it), on a terminal only
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
//	shell.pause           the loop holds the printer, over it, while a pager has the
//	                      terminal (help); the events wait in the listener
//	noticeMu              inCommand and held: while a command is in flight (callContext
//	                      to its cancel), the printer's and redialer's notices of the
//	                      session's end wait in held, so that the reply QEMU sent before
//	                      hanging up is printed first
//	Completer.mu          the schema, fetched once per connection
//
// Results and events go to the editor's writer; errors and notices to
// Config.Err, which the command line points at stderr unless a person
// reads a terminal.
package shell
