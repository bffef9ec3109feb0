package cmd

import (
	"io"
	"os"

	"github.com/fatih/color"
	"github.com/mattn/go-isatty"
)

// IOStreams are a command's standard streams and what is known about
// them. TTY-dependent decisions (colour, pretty output, prompts) are made
// from these fields and nowhere else.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	InTTY  bool // stdin is a terminal: run the interactive editor
	OutTTY bool // stdout is a terminal: pretty output by default
	ErrTTY bool // stderr is a terminal: progress bars (ga cp)
	// ColorOK is fatih/color's verdict for stdout: a terminal, NO_COLOR
	// unset, TERM not dumb. --color=auto follows it.
	ColorOK bool
}

// System returns the process's real streams.
func System() *IOStreams {
	return &IOStreams{
		In:      os.Stdin,
		Out:     os.Stdout,
		ErrOut:  os.Stderr,
		InTTY:   isatty.IsTerminal(os.Stdin.Fd()),
		OutTTY:  isatty.IsTerminal(os.Stdout.Fd()),
		ErrTTY:  isatty.IsTerminal(os.Stderr.Fd()),
		ColorOK: !color.NoColor,
	}
}
