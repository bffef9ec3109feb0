package cmd

import (
	"context"
	"errors"

	"github.com/spf13/cobra"
)

func newGAConnectCmd(g *GlobalOptions, runF func(context.Context, *GAOptions) error) *cobra.Command {
	opts := &GAOptions{GlobalOptions: g}
	c := &cobra.Command{
		Use:   "connect [ADDR]",
		Short: "Open the shell on a guest agent",
		Args:  maxOneAddress,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Addr = args[0]
			}
			return runF(c.Context(), opts)
		},
	}
	return c
}

func gaConnectRun(ctx context.Context, opts *GAOptions) error {
	return errors.New("not yet")
}
