// Package proxy serves many QMP clients over one connection to QEMU, whose
// monitor serves one client at a time.
//
// Each client sees a QMP server: QEMU's own greeting, capabilities
// negotiation (answered by the proxy), then commands, which go to QEMU
// under ids of the proxy's and come back under the client's own, verbatim
// (but for a string in single quotes, which QEMU's parser takes: it comes
// back in double ones).
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
//	TLS handshake, one     the accept loop, for a tls:      the handshake ending (done, refused, or
//	per TLS client         listener's connection            ConnectTimeout or ctx); it then admits
//	                                                        the client or closes it; Run waits
//	client reader          the accept loop (or a TLS        the connection closing: the client
//	(client.serve)         handshake), admitting a client   leaving, kill, or Run ending; Run waits
//	client writer          client.serve                     kill (done closed), a write error, or the
//	                                                        end of a draining client's queue (a nil
//	                                                        message, after its last reply); client.serve
//	                                                        waits
//
// Who may touch what:
//
//	lock or token          guards
//	Proxy.sendMu           a request's connection to QEMU: held shared by forward from
//	                       registering the call until it is sent, whole by establish
//	                       (barrier) before a new connection goes live
//	Proxy.mu               serving, servingCh, greeting, offered, clients, pending, lastID,
//	                       lostCh, each client's negotiated, last, inflight and draining,
//	                       and every push into a client's queue: so the upstream reader
//	                       (events, replies) and a client's reader (the proxy's own
//	                       replies) keep one order
//	client reader          the client's frameReader (its bytes and received descriptors);
//	                       the only writer of negotiated and oob
//	client writer          its bufio.Writer
//	client.wmu             the client's connection's write side and tail: held by the
//	                       writer while it writes, and by push (under Proxy.mu) writing a
//	                       message itself when nothing is queued (client.queued is 0)
//	client.killOnce        closing done and the connection, once
//
// Order: QEMU's messages are handled one at a time by the upstream reader
// (Handle), which pushes each event into every negotiated client's queue
// and each reply into its client's, so a client sees QEMU's order; with
// nothing queued for the client, it writes the message itself, without
// blocking, which spares waking the client's writer for each reply. A
// reply the proxy makes itself (an error, a refusal) waits behind the
// client's in-band call still in flight (client.last), as QEMU's would.
// Pushing never blocks: a full queue closes that client. A client that
// half-closes its connection (end of input) is answered all the same,
// then closed, as QEMU does.
package proxy
