package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/shell"
)

// ExecOptions are the inputs of qmpsh exec.
type ExecOptions struct {
	*GlobalOptions
	Socket string
	Args   []string // COMMAND [key=value ...], or one raw JSON message
}

func newExecCmd(g *GlobalOptions) *cobra.Command {
	opts := &ExecOptions{GlobalOptions: g}
	c := &cobra.Command{
		Use:   "exec [-s ADDR] COMMAND [key=value ...] | exec [-s ADDR] JSON",
		Short: "Run one QMP command and print its result as JSON",
		Long: `Connect, negotiate, run one command, print its "return" value as JSON on
stdout, and exit. Arguments use the shell's syntax (key=value, dotted keys,
JSON values); a single argument starting with { is sent as a raw QMP
message. An error reply prints "Class: description" on stderr.

` + exitStatusHelp,
		Example: `  qmpsh exec -s /tmp/qmp.sock query-status
  QMP_SOCKET=/tmp/qmp.sock qmpsh exec qom-get path=/machine property=type
  qmpsh exec -s localhost:4444 '{"execute": "query-version"}'`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("exec needs a command")
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			opts.Args = args
			return execRun(c.Context(), opts)
		},
	}
	c.Flags().StringVarP(&opts.Socket, "socket", "s", "", "QMP server `ADDR` (default $QMP_SOCKET)")
	return c
}

func execRun(ctx context.Context, opts *ExecOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := opts.check(); err != nil {
		return err
	}
	addr, err := address(opts.Socket)
	if err != nil {
		return err
	}
	// Parse everything before connecting: a syntax error sends nothing.
	cmd, err := parseExecArgs(opts.Args)
	if err != nil {
		return err
	}

	client, closeLog, err := opts.newClient(opts.IO.ErrOut)
	if err != nil {
		return err
	}
	defer closeLog()
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	if err := client.Connect(ctx, addr); err != nil {
		return connectionError(addr, err)
	}
	ret, err := cmd.run(ctx, client)
	// The command's outcome is what counts: after a successful quit, QEMU
	// hanging up is no error.
	client.Disconnect()
	var ee *qmp.ExecuteError
	var xe *ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee), errors.As(err, &xe):
		return err
	default:
		return connectionError(addr, err)
	}
	opts.IO.Out.Write(opts.format().JSON(ret))
	return nil
}

// execCommand is exec's command: raw JSON, or a name and its key=value
// arguments, typed once connected.
type execCommand struct {
	raw  *shell.Command
	name string
	args []shell.KeyValue
}

// parseExecArgs turns exec's arguments into a command, with the shell's
// syntax: COMMAND key=value ..., or one raw JSON object.
func parseExecArgs(args []string) (*execCommand, error) {
	if strings.HasPrefix(strings.TrimSpace(args[0]), "{") {
		if len(args) > 1 {
			return nil, syntaxError(fmt.Errorf("a raw JSON message must be the only argument, got %d more", len(args)-1))
		}
		cmd, err := shell.ParseLine(args[0])
		if err != nil {
			return nil, syntaxError(err)
		}
		return &execCommand{raw: cmd}, nil
	}
	if strings.Contains(args[0], "=") || strings.TrimSpace(args[0]) == "" {
		return nil, syntaxError(fmt.Errorf("expected a command name first, got %q", args[0]))
	}
	// Guessing finds every malformed word and value, before connecting;
	// the schema, if it is needed, only types the values differently.
	if _, err := shell.ParseArgs(args[1:]); err != nil {
		return nil, syntaxError(err)
	}
	kvs, err := shell.SplitArgs(args[1:])
	if err != nil {
		return nil, syntaxError(err)
	}
	return &execCommand{name: args[0], args: kvs}, nil
}

// run runs the command and returns its "return" value. The schema is
// fetched only when it is needed, to keep one-shot latency low: before
// sending when a value's type is ambiguous (id=123 is a string or an
// integer depending on the argument), and after an error reply, to
// explain it.
func (c *execCommand) run(ctx context.Context, client *qmp.Client) (json.RawMessage, error) {
	if c.raw != nil {
		return runOne(ctx, client, c.raw)
	}
	var schema *shell.Schema
	fetched := false
	fetch := func() {
		fetched = true
		schema, _ = shell.FetchSchema(ctx, func(ctx context.Context, cmd string) (json.RawMessage, error) {
			return client.Execute(ctx, cmd, nil)
		})
	}
	if shell.NeedsSchema(c.args) {
		fetch()
	}
	args, err := schema.CommandArgs(c.name, c.args)
	if err != nil {
		return nil, syntaxError(err)
	}
	ret, err := runOne(ctx, client, &shell.Command{Name: c.name, Args: args})
	var ee *qmp.ExecuteError
	if errors.As(err, &ee) {
		if !fetched {
			fetch()
		}
		err = schema.Explain(c.name, c.args, err)
	}
	return ret, err
}

// syntaxError is a usage error in the QMP command, not in qmpsh's flags.
func syntaxError(err error) error {
	return &ExitError{Code: ExitUsage, Err: err, Syntax: true}
}

// runOne runs cmd and returns its "return" value.
func runOne(ctx context.Context, client *qmp.Client, cmd *shell.Command) (json.RawMessage, error) {
	if cmd.Raw == nil {
		var args any
		if cmd.Args != nil {
			args = cmd.Args
		}
		return client.Execute(ctx, cmd.Name, args)
	}
	reply, err := client.Raw(ctx, cmd.Raw)
	if err != nil {
		return nil, err
	}
	var r struct {
		Return json.RawMessage `json:"return"`
	}
	if err := json.Unmarshal(reply, &r); err != nil || r.Return == nil {
		return reply, nil
	}
	return r.Return, nil
}
