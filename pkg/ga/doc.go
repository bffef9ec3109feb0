// Package ga is a client for the QEMU guest agent (qemu-ga), which runs in
// a guest and speaks QMP's wire format over a virtio-serial port (a UNIX
// socket on the host) or vsock.
//
// The agent differs from a QMP server in ways this client takes care of:
// it sends no greeting and negotiates nothing; its channel may hold
// stale output or half a request from an earlier client, so Connect
// synchronises (a 0xFF byte, which resets the agent's parser, then
// guest-sync-delimited with a fresh random id, whose reply follows a 0xFF
// sentinel) and synchronises again before the next call after a call
// timed out, since the agent may have restarted meanwhile; and some
// commands (guest-shutdown, guest-suspend-*) never reply on success, so
// Exec returns as soon as they are sent.
//
// A few lines run a program in the guest and read a guest file:
//
//	c := ga.NewClient()
//	if err := c.Connect(ctx, "/run/vm/qga.sock"); err != nil { ... }
//	defer c.Disconnect()
//	res, err := c.Run(ctx, ga.Program{Path: "/bin/uname", Args: []string{"-a"}})
//	fmt.Printf("%s", res.Stdout)
//	_, err = c.ReadFile(ctx, "/etc/os-release", os.Stdout, nil)
//
// The client is built on pkg/protocol (connection lifecycle, runstate,
// reader and writer goroutines) and shares the error reply type with
// pkg/qmp: an error reply is a *wire.ExecuteError (qmp.ExecuteError).
//
// # Concurrency
//
// A Client's methods are safe for concurrent use. Calls are matched to
// replies by id; the agent handles one request at a time, in order.
//
//	goroutine               started by                  stopped by
//	reader and writer       pkg/protocol, when Connect  Disconnect, or the session ending
//	                        (or ConnectConn) connects
//	a vsock dial's          context.AfterFunc, when     setting the deadline that makes the
//	interrupter             ctx ends while a vsock      dial return; unregistered when the
//	                        connect is in progress      dial ends first
//
// Who may touch what:
//
//	lock or atomic          guards
//	Client.mu               pending (calls waiting for their reply, by id) and noReply
//	                        (the commands that answer nothing on success)
//	Client.syncMu           the resynchronisation (guest-sync-delimited), one at a time
//	Client.stale            that a call went unanswered, so the next one resynchronises
//	Client.nextID           the next request id
package ga
