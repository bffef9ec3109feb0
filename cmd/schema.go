package cmd

import (
	"context"
	"errors"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/shell"
)

// SchemaOptions are the inputs of qmpsh schema.
type SchemaOptions struct {
	*GlobalOptions
	Socket string
	Name   string // a command or event; "" lists them
	JSON   bool
}

func newSchemaCmd(g *GlobalOptions, runF func(context.Context, *SchemaOptions) error) *cobra.Command {
	opts := &SchemaOptions{GlobalOptions: g}
	c := &cobra.Command{
		Use:   "schema [-s ADDR] [NAME] [--json]",
		Short: "Show a command's or an event's arguments, or list them all",
		Long: `Ask QEMU for its schema (query-qmp-schema) and show what NAME, a command
or an event, takes: its arguments with their types, which are optional,
enum values, nested members, and what a command returns. The shell's
help NAME shows the same. Without NAME, list the commands and events.

With --json, print the schema entries themselves: NAME's entry followed
by every type it refers to, or {"commands": [...], "events": [...]}.
When standard output is not a terminal, schema prints that JSON always,
one line, so that a pipeline reads JSON lines only.

A NAME that is neither a command nor an event of this QEMU exits with
status 1, suggesting the closest name.

` + exitStatusHelp,
		Example: `  qmpsh schema -s /tmp/qmp.sock blockdev-add
  qmpsh schema -s /tmp/qmp.sock --json query-status | jq .
  qmpsh schema -s /tmp/qmp.sock | jq -r '.commands[]' | grep query-`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageErrorf("schema takes one NAME, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Name = args[0]
			}
			return runF(c.Context(), opts)
		},
	}
	oneSocketFlag(c.Flags(), &opts.Socket, "QMP server `ADDR` (default $QMP_SOCKET)")
	c.Flags().BoolVar(&opts.JSON, "json", false, "print the schema entries as JSON")
	c.ValidArgsFunction = schemaNames(g, &opts.Socket)
	return c
}

func schemaRun(ctx context.Context, opts *SchemaOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := opts.check(); err != nil {
		return err
	}
	addr, err := address(opts.Getenv, opts.Socket, "-s ADDR")
	if err != nil {
		return err
	}
	client, closeLog, err := opts.newTargetClient(opts.IO.ErrOut, addr)
	if err != nil {
		return err
	}
	defer closeLog()
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	if err := client.Connect(ctx, addr); err != nil {
		return connectionError(addr, err)
	}
	s, err := shell.FetchSchema(ctx, client)
	client.Disconnect()
	if err != nil {
		var ee *qmp.ExecuteError
		if errors.As(err, &ee) {
			return err
		}
		return connectionError(addr, err)
	}

	out := opts.IO.Out
	// On a pipe, stdout carries JSON lines only: the text is for people.
	asJSON := opts.JSON || !opts.IO.OutTTY
	switch {
	case opts.Name == "" && asJSON:
		out.Write(opts.format().JSON(s.ListJSON()))
	case opts.Name == "":
		opts.show(shell.Printable(s.List())) // the server's names
	case asJSON:
		b, err := s.HelpJSON(opts.Name)
		if err != nil {
			return &ExitError{Code: ExitQMPError, Err: err}
		}
		out.Write(opts.format().JSON(b))
	default:
		text, err := s.Help(opts.Name)
		if err != nil {
			return &ExitError{Code: ExitQMPError, Err: err}
		}
		if !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		opts.show(shell.Printable(text))
	}
	return nil
}

// show prints text for a person on the terminal: through $PAGER when it
// is longer than the screen, as the shell's help is.
func (o *SchemaOptions) show(text string) {
	if page := o.pager(); page != nil && page(text) {
		return
	}
	io.WriteString(o.IO.Out, text)
}
