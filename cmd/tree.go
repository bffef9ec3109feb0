package cmd

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// runError marks an error a command's RunE returned. Any other error
// comes from cobra before a command ran (an unknown command, a bad
// argument count, conflicting flags): a usage error, nothing sent.
type runError struct{ err error }

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

// finishTree completes the command tree once every command is added:
// help and completion commands that report unknown topics and shells as
// usage errors, the exit-status table once in every command's help, and
// errors from running commands marked as such for exitCode.
func finishTree(root *cobra.Command) {
	root.SuggestionsMinimumDistance = 2
	root.SetHelpCommand(newHelpCmd(root))
	root.InitDefaultCompletionCmd()
	if root.Run == nil && root.RunE == nil {
		// Cobra's own error for an unknown command spans five lines.
		root.Args = cobra.ArbitraryArgs
		root.RunE = func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return c.Help()
			}
			return usageErrorf("%s", unknown(root, "command", args[0], args[0]))
		}
	}
	// Root and completion run only to report an unknown word or show
	// help: their usage line is "[command]" alone, as before.
	base := strings.Replace(root.UsageTemplate(), "{{if .Runnable}}",
		"{{if and .Runnable (not .HasAvailableSubCommands)}}", 1)
	walk(root, func(c *cobra.Command) {
		if c.Name() == "completion" && c.Parent() == root {
			completionShells(c)
		}
		// Commands whose long help ends with the table get none from
		// the usage template; the others get it there.
		if strings.Contains(c.Long, exitStatusHelp) {
			c.SetUsageTemplate(base)
		} else {
			c.SetUsageTemplate(base + "\n" + exitStatusHelp + "\n")
		}
		if run := c.RunE; run != nil {
			c.RunE = func(c *cobra.Command, args []string) error {
				if err := run(c, args); err != nil {
					return &runError{err}
				}
				return nil
			}
		}
	})
}

func walk(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, sub := range c.Commands() {
		walk(sub, f)
	}
}

// newHelpCmd replaces cobra's help command, which prints the usage on
// stdout and exits 0 for an unknown topic.
func newHelpCmd(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		Long:  "Help shows the help of any command: qmpsh help exec.",
		ValidArgsFunction: func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			var names []cobra.Completion
			cmd, _, err := root.Find(args)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			for _, sub := range cmd.Commands() {
				if sub.IsAvailableCommand() && strings.HasPrefix(sub.Name(), toComplete) {
					names = append(names, cobra.CompletionWithDesc(sub.Name(), sub.Short))
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := root.Find(args)
			if err != nil || cmd == nil || len(rest) > 0 && cmd.HasSubCommands() {
				if cmd == nil {
					cmd = root
				}
				if len(rest) == 0 {
					rest = args
				}
				return usageErrorf("%s", unknown(cmd, "help topic", strings.Join(args, " "), rest[0]))
			}
			cmd.InitDefaultHelpFlag()
			cmd.InitDefaultVersionFlag()
			return cmd.Help()
		},
	}
}

// unknown says that name is no kind under parent, with the subcommands
// whose names are close to word.
func unknown(parent *cobra.Command, kind, name, word string) string {
	msg := fmt.Sprintf("unknown %s %q", kind, name)
	if s := parent.SuggestionsFor(word); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return msg
}

// completionShells makes "qmpsh completion SHELL" for a shell cobra has
// no script for a usage error; cobra's completion command would print
// its help and exit 0.
func completionShells(c *cobra.Command) {
	var shells []string
	for _, sub := range c.Commands() {
		shells = append(shells, sub.Name())
	}
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return c.Help()
		}
		return usageErrorf("no completion for shell %q; qmpsh completes for %s", args[0], strings.Join(shells, ", "))
	}
}
