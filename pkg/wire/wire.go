// Package wire holds what the QMP client (pkg/qmp) and the guest agent
// client (pkg/ga) share of the wire format they both speak: the error
// reply. Each client keeps its own request encoding and reply routing,
// since QMP's greeting, events and out-of-band ids and the agent's
// sentinel byte make them differ.
package wire

// ExecuteError is an error reply: the command ran (or was rejected) and
// the answer is an error of a class such as "CommandNotFound" or
// "GenericError". pkg/qmp calls it qmp.ExecuteError.
type ExecuteError struct {
	Command string // the command name, "" for a raw message
	Class   string
	Desc    string
}

// Error returns "Class: Desc", the form QEMU users know from qmp-shell.
func (e *ExecuteError) Error() string { return e.Class + ": " + e.Desc }
