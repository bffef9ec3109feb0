// Package protocol is a generic asynchronous message protocol over a byte
// stream: the connection lifecycle (connect, accept, or a caller's own
// net.Conn), an explicit runstate machine, a reader and a writer goroutine,
// and a bound on message size.
//
// It follows the AsyncProtocol class of QEMU's Python qemu.qmp package but
// knows nothing of QMP: messages are opaque byte strings, one per line (or,
// going out, back to back: see Config.Unterminated). The layer above
// supplies a session hook (greeting, negotiation), a message handler and,
// if it likes, a trace of the traffic through Config.
//
// # Concurrency
//
// A Protocol runs at most one session at a time; each session has up to
// two goroutines of its own.
//
//	goroutine         started by                          stopped by
//	reader            Connect/Accept/ConnectConn, as the  a read error (the peer, a bad message, Handle's
//	(session.reader)  session becomes RUNNING             error) or the session ending; Disconnect waits
//	writer            the first message queued for it     the session ending (done), or a write error;
//	(session.writer)  (session.startWriter), unless the   Disconnect waits
//	                  session has ended
//
// A write the peer refused (EPIPE) does not end the session at once: the
// peer may have written replies before it closed (QEMU answers quit, then
// exits), so the reader goes on to the end of the stream and ends the
// session there; a timer (writeGrace) ends it should the stream not end.
//
// Besides, context.AfterFunc callbacks turn a context ending into a
// deadline or a closed listener: the session hook's (stopped when the
// hook returns), the listener's in Accept (stopped when it returns), and
// a caller's Read's (see session.watch; dropped by unwatch, under rmu,
// at the latest by Disconnect).
//
// Who may touch what:
//
//	lock or token            guards
//	Protocol.mu              state and changed (every transition happens under it), sess,
//	                         stopConnect, connectDone, endErr
//	Protocol.disconnectMu    one Disconnect at a time
//	Protocol.watchMu         the list of Watchers; Watcher.mu guards each one's queue
//	Protocol.live (atomic)   the RUNNING session, for a Send without a lock
//	session.rmu, the read    the connection's read side (the readSide: the input buffer,
//	token                    a message an interrupted Read left, the context it watches)
//	                         and the calls of Handle and Drained. Held by the reader
//	                         goroutine, or by a caller in Read while the reader goroutine
//	                         has yielded (see callerread.go); the session hook has the
//	                         connection to itself before the reader starts.
//	session.dlMu             the read deadline that interrupts a Read (reading, dlSet)
//	session.wmu              the write side: the buffered writer, SendNow's scratch
//	                         buffer and what it could not write (tail). Held by the
//	                         writer goroutine, or by a caller in SendNow.
//	session.startMu          starting the writer goroutine (writing), and marking the
//	                         session over, so that no writer starts once it has ended
//	session.endOnce          the cause (err), recorded once, before done is closed
//	session.wfail (atomic)   the refused write; set once, then nothing more is written
//
// To wait for the runstate to change, use WaitForStateChange, or
// RunstateChanged in a select; a Watcher is for whoever must see every
// transition, in order.
package protocol
