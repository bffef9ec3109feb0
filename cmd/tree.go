package cmd

import (
	"fmt"
	"io"
	"strings"
	"unicode"

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
	root.SetUsageFunc(usage) // every command's, through its parent
	walk(root, func(c *cobra.Command) {
		if c.Name() == "completion" && c.Parent() == root {
			completionShells(c)
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

// UsageLine is the line under "Usage:" in c's --help, "" for a help
// topic, which has none: a command with subcommands runs only to report
// an unknown word or show help, so its line is "[command]" alone. The
// manual pages' synopses are this line too.
func UsageLine(c *cobra.Command) string {
	c.LocalFlags() // merges the persistent flags in, as cobra's own usage does first
	switch {
	case c.HasAvailableSubCommands():
		return c.CommandPath() + " [command]"
	case c.Runnable():
		return c.UseLine()
	}
	return ""
}

// completionExamples load each shell's completions, for now and for
// good (make install puts them where the shells look already).
var completionExamples = map[string]string{
	"bash":       "  source <(qmpsh completion bash)\n  qmpsh completion bash > ~/.local/share/bash-completion/completions/qmpsh",
	"zsh":        "  qmpsh completion zsh > \"${fpath[1]}/_qmpsh\"",
	"fish":       "  qmpsh completion fish | source\n  qmpsh completion fish > ~/.config/fish/completions/qmpsh.fish",
	"powershell": "  qmpsh completion powershell | Out-String | Invoke-Expression",
}

// usage writes c's usage as cobra's default usage template does, but for
// two things: a command with subcommands (root, completion) runs only to
// report an unknown word or show help, so its usage line is "[command]"
// alone; and the exit-status table ends the text, unless c's long help
// ends with it already. A function, not a template: text/template calls
// methods by name, which makes the linker keep every exported method of
// every type in the binary, a sixth of its size, and the pages it spans
// cost every start of qmpsh (exec's above all). TestUsage holds it to the
// template it replaced.
func usage(c *cobra.Command) error {
	var b strings.Builder
	b.WriteString("Usage:")
	if line := UsageLine(c); line != "" {
		b.WriteString("\n  " + line)
	}
	if len(c.Aliases) > 0 {
		b.WriteString("\n\nAliases:\n  " + c.NameAndAliases())
	}
	if c.HasExample() {
		b.WriteString("\n\nExamples:\n" + c.Example)
	}
	if c.HasAvailableSubCommands() {
		b.WriteString("\n\nAvailable Commands:")
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() || sub.Name() == "help" {
				fmt.Fprintf(&b, "\n  %-*s %s", sub.NamePadding(), sub.Name(), sub.Short)
			}
		}
	}
	if c.HasAvailableLocalFlags() {
		b.WriteString("\n\nFlags:\n" + strings.TrimRightFunc(c.LocalFlags().FlagUsages(), unicode.IsSpace))
	}
	if c.HasAvailableInheritedFlags() {
		b.WriteString("\n\nGlobal Flags:\n" + strings.TrimRightFunc(c.InheritedFlags().FlagUsages(), unicode.IsSpace))
	}
	if c.HasHelpSubCommands() {
		b.WriteString("\n\nAdditional help topics:")
		for _, sub := range c.Commands() {
			if sub.IsAdditionalHelpTopicCommand() {
				fmt.Fprintf(&b, "\n  %-*s %s", sub.CommandPathPadding(), sub.CommandPath(), sub.Short)
			}
		}
	}
	if c.HasAvailableSubCommands() {
		fmt.Fprintf(&b, "\n\nUse \"%s [command] --help\" for more information about a command.", c.CommandPath())
	}
	b.WriteString("\n")
	if !strings.Contains(c.Long, exitStatusHelp) {
		b.WriteString("\n" + exitStatusHelp + "\n")
	}
	_, err := io.WriteString(c.OutOrStderr(), b.String())
	return err
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
		if ex := completionExamples[sub.Name()]; ex != "" {
			sub.Example = ex
		}
	}
	// completion's own: each shell's first line.
	var firsts []string
	for _, sh := range []string{"bash", "zsh", "fish"} {
		first, _, _ := strings.Cut(completionExamples[sh], "\n")
		firsts = append(firsts, first)
	}
	c.Example = strings.Join(firsts, "\n")
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return c.Help()
		}
		return usageErrorf("no completion for shell %q; qmpsh completes for %s", args[0], strings.Join(shells, ", "))
	}
}
