package shell

import (
	"context"
	"encoding/json"

	"github.com/qmpsh/qmpsh/pkg/protocol"
)

// Agent is what the shell needs of a guest agent client (pkg/ga's
// Client is one).
type Agent interface {
	Exec(ctx context.Context, command string, args any) (json.RawMessage, error)
	Raw(ctx context.Context, msg json.RawMessage) (json.RawMessage, error)
	Runstate() protocol.Runstate
	RunstateChanged() (protocol.Runstate, <-chan struct{})
	Err() error
}

// conn is what the shell watches of its connection, QMP's or an agent's.
type conn interface {
	Runstate() protocol.Runstate
	RunstateChanged() (protocol.Runstate, <-chan struct{})
	Err() error
}

func (sh *shell) conn() conn {
	if sh.Agent != nil {
		return sh.Agent
	}
	return sh.Client
}

// send sends c to the agent or through the QMP client.
func (sh *shell) send(ctx context.Context, c *Command) (json.RawMessage, error) {
	if sh.Agent == nil {
		return Send(ctx, sh.Client, c)
	}
	if c.Raw != nil {
		return sh.Agent.Raw(ctx, c.Raw)
	}
	var args any
	if c.Args != nil {
		args = c.Args
	}
	return sh.Agent.Exec(ctx, c.Name, args)
}
