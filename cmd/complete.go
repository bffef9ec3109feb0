package cmd

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/qmpsh/qmpsh/pkg/qapi"
	"github.com/qmpsh/qmpsh/pkg/shell"
)

// completionTimeout bounds connecting to a server for Tab completion: a
// person pressing Tab waits for it, and a server that does not answer at
// once (another client holds the monitor) gives no completions rather
// than a hang.
const completionTimeout = 2 * time.Second

// schemaCompletion returns a cobra completion function offering the names
// that names picks from the schema of the server given by -s (the first,
// if several; else $QMP_SOCKET). Any failure, from a missing address to a
// server without a schema, completes to nothing, silently: completion
// runs inside the user's shell, where an error message has no place.
func schemaCompletion(g *GlobalOptions, sockets func() []string, names func(*qapi.Schema) []string) cobra.CompletionFunc {
	return func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		const none = cobra.ShellCompDirectiveNoFileComp
		addrs, _, err := targets(g.Getenv, sockets())
		if err != nil {
			return nil, none
		}
		ctx, cancel := context.WithTimeout(context.Background(), min(g.Timeout, completionTimeout))
		defer cancel()
		client := g.NewClient()
		if err := client.Connect(ctx, addrs[0]); err != nil {
			return nil, none
		}
		defer client.Disconnect()
		s, err := shell.FetchSchema(ctx, client)
		if err != nil {
			return nil, none
		}
		var out []cobra.Completion
		for _, n := range names(s) {
			// Typable: a hostile name would put escapes on the
			// terminal, or break cobra's one-per-line protocol.
			if strings.HasPrefix(n, toComplete) && shell.Typable(n) {
				out = append(out, n)
			}
		}
		return out, none
	}
}

// commandNames completes a command's first argument only: the words
// after it are key=value pairs.
func commandNames(g *GlobalOptions, sockets *[]string) cobra.CompletionFunc {
	return firstArg(schemaCompletion(g, func() []string { return *sockets }, (*qapi.Schema).Commands))
}

// schemaNames completes schema's NAME: a command or an event.
func schemaNames(g *GlobalOptions, socket *string) cobra.CompletionFunc {
	sockets := func() []string {
		if *socket == "" {
			return nil
		}
		return []string{*socket}
	}
	return firstArg(schemaCompletion(g, sockets, func(s *qapi.Schema) []string {
		return append(s.Commands(), s.Events()...)
	}))
}

// firstArg completes the first argument with names, and nothing after it.
func firstArg(names cobra.CompletionFunc) cobra.CompletionFunc {
	return func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return names(c, args, toComplete)
	}
}

// eventNames completes an event-name flag.
func eventNames(g *GlobalOptions, sockets *[]string) cobra.CompletionFunc {
	return schemaCompletion(g, func() []string { return *sockets }, (*qapi.Schema).Events)
}

// fixedCompletions completes to those of choices that start with what
// was typed, and never to file names.
func fixedCompletions(choices ...string) cobra.CompletionFunc {
	return func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		var out []cobra.Completion
		for _, ch := range choices {
			if strings.HasPrefix(ch, toComplete) {
				out = append(out, ch)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
