package cmd

import (
	"errors"
	"os/exec"
	"strings"

	"github.com/chzyer/readline"
)

// defaultPager is git's choice: -F leaves at once when the text fits,
// -R passes colour through, -X leaves the text on the screen.
const defaultPager = "less -FRX"

// pager returns the function that shows long help through $PAGER, as git
// does, or nil when nothing is to be paged: when the shell is not on a
// terminal (stdin and stdout), or PAGER is set empty or to cat. The
// pager runs under sh -c, as git runs it, reading the text on its stdin.
func (o *GlobalOptions) pager() func(text string) bool {
	if !o.IO.InTTY || !o.IO.OutTTY {
		return nil
	}
	cmdline, set := "", false
	if o.LookupEnv != nil {
		cmdline, set = o.LookupEnv("PAGER")
	} else if cmdline = o.Getenv("PAGER"); cmdline != "" {
		set = true
	}
	switch {
	case !set:
		cmdline = defaultPager
	case strings.TrimSpace(cmdline) == "", strings.TrimSpace(cmdline) == "cat":
		return nil
	}
	return func(text string) bool {
		if strings.Count(text, "\n") < o.screenRows()-1 { // and the prompt
			return false
		}
		cmd := exec.Command("/bin/sh", "-c", cmdline)
		cmd.Stdin = strings.NewReader(text)
		cmd.Stdout, cmd.Stderr = o.IO.Out, o.IO.ErrOut
		if f, ok := outFile(o.IO.Out); ok {
			cmd.Stdout = f // the pager's own, a terminal
		}
		// A pager that cannot start (sh's 126 and 127: not executable,
		// not found) leaves the text to be printed; one that ran has
		// shown it, whatever its exit status.
		err := cmd.Run()
		var xe *exec.ExitError
		if errors.As(err, &xe) {
			return xe.ExitCode() != 126 && xe.ExitCode() != 127
		}
		return err == nil
	}
}

// screenRows is the terminal's height, from stdout if it is a terminal
// file; a large number when it cannot be known, so that nothing is paged.
func (o *GlobalOptions) screenRows() int {
	if f, ok := outFile(o.IO.Out); ok {
		if _, rows, err := readline.GetSize(int(f.Fd())); err == nil && rows > 0 {
			return rows
		}
	}
	return 1 << 30
}
