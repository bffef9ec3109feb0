// Package qmp is a client for the QEMU Machine Protocol.
//
// A Client connects to (or accepts a connection from) a QMP server such as
// qemu-system-* or qemu-storage-daemon, reads the greeting, negotiates
// capabilities, and then runs commands concurrently over the one
// connection, routing each reply to its caller by id and each event to the
// listeners that asked for it. It sends QEMU only what it needs: no
// newline after a request, and no id on a call while no other call sent
// without one is pending (its reply, id-less too, cannot be another's);
// as QEMU runs in-band commands one at a time, at most two are in flight
// while the server is the slower side (see inbandGate), so that every
// other request goes without an id. It stands on
// pkg/protocol for the connection lifecycle; it knows nothing of
// terminals or command lines.
// WithTrace shows the traffic (WithAsideTrace also tells the program's
// own calls, made with an Aside context); WaitForStateChange waits for the
// connection's state to change.
//
// # Concurrency
//
//	goroutine           started by                  stopped by
//	protocol's reader   Connect, Accept,            the session's end (see pkg/protocol); it runs
//	and writer          ConnectConn                 handle, handOn (Drained) and ended (Ended)
//	Listener.deliver    Client.Listen               Listener.Close, which waits for it
//
// A call runs on its caller's goroutine: it writes its request itself
// when nothing is queued (protocol.SendNow) and, when it waits alone,
// reads its own reply (protocol.Read), running handle as the reader
// goroutine would.
//
// Who may touch what:
//
//	lock or token                guards
//	Client.inband (channel)      a token per in-band call in flight (at most maxInBand)
//	Client.mu                    gate (whether calls need a token), pending (the calls
//	                             awaiting replies, by id; 0 for the one
//	                             sent without an id), waiting, lastID, greeting, oob
//	Client.listenMu              changes to the Listener list, which is copy-on-write:
//	                             the reader loads it (Client.listeners) without a lock
//	protocol's read token        Client.in, the inbox: events dispatched and not yet handed
//	                             on, interned event names, the slab of copied bytes. Only
//	                             handle, dispatch, handOn and establish, called by
//	                             whoever holds the token, touch it.
//	Listener.mu                  the Listener's queue, its count (queued) and closed
//	Listener.events (channel)    events on their way to the receiver; push sends a few
//	                             itself, deliver the rest
//	Listener.moved, taking       no state: deliver wakes a Take under way (taking) when
//	                             it uncounts an event it has sent
//	asideCalls.mu (n atomic)     the ids of Aside calls whose reply is not traced yet,
//	                             kept only with a trace: execute adds, the trace hook
//	                             removes on the reply
//
// A call's reply reaches it on a channel of its own, taken from pending
// by whoever routes the reply; a session's end fails every pending call
// at once (ended).
package qmp
