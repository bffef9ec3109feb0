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
// A Client's methods are safe for concurrent use. It starts no goroutine
// of its own beyond pkg/protocol's reader and writer, which Disconnect
// stops. Calls are matched to replies by id; the agent handles one
// request at a time, in order.
package ga
