package shell

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/qmpsh/qmpsh/pkg/qapi"
	"github.com/qmpsh/qmpsh/pkg/qmp"
)

// Input is one command as the user gave it, its syntax checked: a raw
// JSON message, a command name with its key=value arguments, or a
// transaction block. Parser.Parse makes it from a line, ParseArgs from
// words the operating system's shell has split. Its key=value values are
// not typed yet: Command types them with the schema of the server the
// command goes to, which fan-out may not know until it has connected to
// each. An Input is not changed once made, so one may go to many servers
// at once.
type Input struct {
	// Name is the command name; "" for a raw message.
	Name string
	// Args are the key=value arguments as typed, not interpreted.
	Args []qapi.KeyValue
	// Raw is a raw JSON message, compacted (insignificant whitespace
	// removed, member order and everything else kept as typed).
	Raw []byte
	// HMP is set for the shell's hmp line (human-monitor-command with
	// the rest of the line as its command line): its return value is
	// HMP's text, whose line ends HMPText makes the shell's.
	HMP bool
	// tx is a closed transaction block: its actions were typed as each
	// line was read, so that a bad line could be typed again.
	tx *Command
}

// Command is a command ready to send: Raw, or Name with Args typed.
type Command struct {
	// Name is the QMP command name, e.g. "blockdev-add".
	Name string
	// Args holds the command arguments; it is nil when there are none.
	// Values are string, bool, int64, uint64, float64, nil, []any and
	// map[string]any, all of which encoding/json writes as expected.
	Args map[string]any
	// Raw is set instead of Name and Args for a raw JSON message.
	Raw []byte
}

// Command types in's values with s, or with qmp-shell's guessing when s
// is nil or has no types. A command s does not know is guessed too, for
// the server to say whether it exists (an error reply that Explain can
// add a suggestion to). Errors are *qapi.SyntaxError or
// *qapi.ValidationError.
func (in *Input) Command(s *qapi.Schema) (*Command, error) {
	switch {
	case in.Raw != nil:
		return &Command{Raw: in.Raw}, nil
	case in.tx != nil:
		return in.tx, nil
	}
	args, err := s.CommandArgs(in.Name, in.Args)
	if err != nil {
		return nil, err
	}
	return &Command{Name: in.Name, Args: args}, nil
}

// Explain adds to err, the server's error reply to in, what s finds wrong
// with it (see qapi.Schema.Explain). Any other error, and the errors of
// raw messages and transaction blocks, are returned unchanged.
func (in *Input) Explain(s *qapi.Schema, err error) error {
	var ee *qmp.ExecuteError
	if in.Raw != nil || in.tx != nil || !errors.As(err, &ee) {
		return err
	}
	if hint := shellWordHint[in.Name]; hint != "" && ee.Class == "CommandNotFound" {
		// Not QEMU's nearest command: "exit" is nearest to "quit",
		// which would stop QEMU.
		return &qapi.HintError{Err: err, Hint: hint}
	}
	return s.Explain(in.Name, in.Args, err)
}

// shellWordHint says what to do instead of a word of the interactive
// shell (see builtins) sent as a command where no shell reads it, as
// `qmpsh exec exit` does.
var shellWordHint = map[string]string{
	"exit":   "exit leaves qmpsh's interactive shell; it is not a QMP command",
	"help":   "help is the interactive shell's; for a command's arguments: qmpsh schema -s ADDR COMMAND",
	"sendfd": "sendfd is the interactive shell's: open it with qmpsh connect ADDR, then type sendfd there",
}

// command returns the name of the command c executes, raw or not ("" if
// a raw message names none).
func (c *Command) command() string {
	if c.Raw == nil {
		return c.Name
	}
	var m struct{ Execute string }
	json.Unmarshal(c.Raw, &m)
	return m.Execute
}

// Send sends c through client and returns the result: the "return" value
// of a command, or the whole reply to a raw message (an error reply is
// also an *qmp.ExecuteError).
func Send(ctx context.Context, client *qmp.Client, c *Command) (json.RawMessage, error) {
	if c.Raw != nil {
		return client.Raw(ctx, c.Raw)
	}
	var args any
	if c.Args != nil {
		args = c.Args
	}
	return client.Execute(ctx, c.Name, args)
}

// FetchSchema asks client's server for its schema (see qapi.Fetch). The
// calls are marked qmp.Aside: qmpsh's own, shown shortened by -v.
func FetchSchema(ctx context.Context, client *qmp.Client) (*qapi.Schema, error) {
	return qapi.Fetch(qmp.Aside(ctx), func(ctx context.Context, command string) (json.RawMessage, error) {
		return client.Execute(ctx, command, nil)
	})
}
