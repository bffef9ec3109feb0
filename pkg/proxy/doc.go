// Package proxy serves many QMP clients over one connection to QEMU, whose
// monitor serves one client at a time.
//
// Each client sees a QMP server: QEMU's own greeting, capabilities
// negotiation (answered by the proxy), then commands, which go to QEMU
// under ids of the proxy's and come back under the client's own, verbatim.
// Events go to every negotiated client. A Policy keeps commands from QEMU.
// The package knows nothing of QEMU's commands beyond qmp_capabilities,
// getfd and add-fd (whose descriptors it passes on), and the names a Policy
// matches.
//
// # Concurrency
//
//	goroutine              started by                       stopped by
//	accept loop, one per   Run                              Run closing the listener (ctx ends, or
//	listener                                                QEMU goes away for good); Run waits
//	upstream reader and    protocol.Protocol, when Run      Run's Disconnect, or QEMU going away
//	writer                 connects to QEMU
//	client reader          the accept loop, admitting a     the connection closing: the client
//	(client.serve)         client                           leaving, kill, or Run ending; Run waits
//	client writer          client.serve                     kill (done closed), a write error, or the
//	                                                        end of a draining client's queue (a nil
//	                                                        message, after its last reply); client.serve
//	                                                        waits
//
// Who may touch what:
//
//	lock or token          guards
//	Proxy.mu               serving, servingCh, greeting, offered, clients, pending, nextID,
//	                       lostCh, each client's negotiated, last, inflight and draining,
//	                       and every push into a client's queue: so the upstream reader
//	                       (events, replies) and a client's reader (the proxy's own
//	                       replies) keep one order
//	client reader          the client's frameReader (its bytes and received descriptors);
//	                       the only writer of negotiated and oob
//	client writer          the client's connection's write side and its bufio.Writer
//	client.killOnce        closing done and the connection, once
//
// Order: QEMU's messages are handled one at a time by the upstream reader
// (Handle), which pushes each event into every negotiated client's queue
// and each reply into its client's, so a client sees QEMU's order. A
// reply the proxy makes itself (an error, a refusal) waits behind the
// client's in-band call still in flight (client.last), as QEMU's would.
// Pushing never blocks: a full queue closes that client. A client that
// half-closes its connection (end of input) is answered all the same,
// then closed, as QEMU does.
package proxy
