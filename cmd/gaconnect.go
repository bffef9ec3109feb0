package cmd

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/qmpsh/qmpsh/pkg/ga"
	"github.com/qmpsh/qmpsh/pkg/qapi"
	"github.com/qmpsh/qmpsh/pkg/shell"
)

// GAConnectOptions are the inputs of qmpsh ga connect.
type GAConnectOptions struct {
	GAOptions
	// HistoryFile is where a terminal session keeps its history; "" for
	// the default under $XDG_STATE_HOME.
	HistoryFile string
}

func newGAConnectCmd(g *GlobalOptions, runF func(context.Context, *GAConnectOptions) error) *cobra.Command {
	opts := &GAConnectOptions{GAOptions: GAOptions{GlobalOptions: g}}
	c := &cobra.Command{
		Use:   "connect [-s ADDR | ADDR]",
		Short: "Open the shell on a guest agent",
		Long: `Connect to the guest agent (-s ADDR or ADDR, else $QGA_SOCKET),
synchronise, and open the shell: qmp-shell's line syntax (command
key=value ...), a line starting with { sent as raw JSON, Tab completing
the commands the agent has enabled (from guest-info).

On a terminal: line editing, history, Tab completion. With standard input
not a terminal, each line is run in order, results are printed, and the
exit status is 3 if the connection was lost under a command, else 4 if
the agent did not answer one within --timeout, else 1 if any failed.

` + gaAddressHelp + `

` + gaTimeoutHelp + `

` + exitStatusHelp,
		Example: `  qmpsh ga connect /tmp/qga.sock
  echo guest-get-osinfo | qmpsh ga connect /tmp/qga.sock`,
		Args: maxOneAddress,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 1 {
				if opts.Addr != "" && opts.Addr != args[0] {
					return usageErrorf("ga connect: give the address once, as -s ADDR or as ADDR, not both")
				}
				opts.Addr = args[0]
			}
			return runF(c.Context(), opts)
		},
	}
	opts.addressFlag(c)
	return c
}

const gaHelpText = `Type a guest agent command as  command-name key=value ...  (qmp-shell
syntax): values are integers, true/false, JSON objects or arrays, or
strings ("..." or '...' to include spaces); a.b=1 builds {"a": {"b": 1}}.
A line starting with { is sent as it is, as raw JSON.
Tab completes the commands the agent has enabled (guest-info).
guest-shutdown and guest-suspend-* print nothing: they never reply.

Built-in commands (not sent to the agent):
  help                  this text
  quit, exit, Ctrl-D    leave the shell
Ctrl-C abandons the line being typed, or stops waiting for a reply.
`

func gaConnectRun(ctx context.Context, opts *GAConnectOptions) error {
	ctx, addr, err := opts.start(ctx)
	if err != nil {
		return err
	}
	so := &ShellOptions{GlobalOptions: opts.GlobalOptions, HistoryFile: opts.HistoryFile}
	ed, comp, err := so.editor(opts.IO.In)
	if err != nil {
		return err
	}
	defer ed.Close()
	// -v traffic beside the results, as connect's: through the editor
	// on a terminal, else on stderr.
	client, hangUp, err := opts.dial(ctx, so.sideWriter(ed), addr)
	if err != nil {
		return err
	}
	defer hangUp()

	completer := &shell.Completer{
		Fetch:    func(ctx context.Context) (*qapi.Schema, error) { return gaSchema(ctx, client) },
		Builtins: []string{"exit", "help", "quit"},
	}
	if comp != nil {
		comp.c.Store(completer)
	}
	// Errors and the banner go through the editor on a terminal (so the
	// prompt is redrawn), to stderr when stdout is not one.
	side := so.sideWriter(ed)
	if ed.Interactive() {
		fmt.Fprintf(side, "Connected to the guest agent at %s. Type help for help, Ctrl-D to leave.\n", addr)
	}
	err = shell.Run(ctx, shell.Config{
		Agent:     client,
		Editor:    ed,
		Err:       side,
		Format:    opts.format(),
		Completer: completer,
		Help:      gaHelpText,
		JSONOut:   !opts.IO.OutTTY,
	})
	if err != nil && !errors.Is(err, shell.ErrCommandFailed) {
		return gaError(addr, err)
	}
	return err
}

// gaSchema is a schema of the agent's enabled command names, for
// completion; guest-info also tells the client which commands never
// reply.
func gaSchema(ctx context.Context, client *ga.Client) (*qapi.Schema, error) {
	info, err := client.Info(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, c := range info.Commands {
		if c.Enabled {
			names = append(names, c.Name)
		}
	}
	return qapi.FromCommands(names), nil
}
