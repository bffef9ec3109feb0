package cmd

import (
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// Tree returns the command tree as a user meets it, cobra's completion
// command included, for documentation generated from it (cmd/qmpsh-man
// writes the manual pages). Its commands are built, never run.
func Tree() *cobra.Command {
	root := NewRootCmd(NewFactory(&IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard}))
	root.InitDefaultCompletionCmd()
	return root
}
