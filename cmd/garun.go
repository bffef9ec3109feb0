package cmd

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qmpsh/qmpsh/pkg/ga"
)

// GARunOptions are the inputs of qmpsh ga run.
type GARunOptions struct {
	GAOptions
	Env     []string // --env K=V, repeatable
	NoStdin bool     // -n: give the program no input, whatever stdin is
	Argv    []string // PROGRAM ARGS...
}

func newGARunCmd(g *GlobalOptions, runF func(context.Context, *GARunOptions) error) *cobra.Command {
	opts := &GARunOptions{GAOptions: GAOptions{GlobalOptions: g}}
	c := &cobra.Command{
		Use:   "run [-s ADDR] [--timeout D] [--env K=V]... [-n] -- PROGRAM [ARG...]",
		Short: "Run a program in the guest, with its output and exit status",
		Long: `Run PROGRAM in the guest (guest-exec, its output captured), wait for it
to exit (guest-exec-status, polled quickly at first, then less often),
write what it wrote to stdout and stderr on qmpsh's stdout and stderr, and
exit with its exit status: 128+N when signal N ended it. Standard input,
when it is not a terminal, is read whole and given to the program (at
most about 48 MiB: it goes base64-encoded in one request, and the agent
takes less than 64 MiB; more is refused before anything is sent, exit
status 1); -n gives it none (as ssh -n does, for a loop that reads its
own stdin).

The agent keeps at most 16 MiB of each stream; qmpsh says on stderr when
it dropped some. --env sets the program's whole environment (the agent's
otherwise). A bare PROGRAM is looked up in the guest's PATH.

--timeout bounds connecting and each request; given explicitly, it also
bounds the whole run (exit status 4 when it expires, the program left
running in the guest). Without it, the program may run as long as it
likes.

` + gaAddressHelp + `

When the program ran to its end, the exit status is the program's (1,
with the code on stderr, for a code no exit status can carry, such as a
Windows guest's 256); otherwise it is qmpsh's own (1: the agent refused,
as for no such program):

` + exitStatusHelp,
		Example: `  qmpsh ga run -s /tmp/qga.sock -- uname -a
  qmpsh ga run -s /tmp/qga.sock -- sh -c 'df -h / && free -m'
  tar cz ./conf | qmpsh ga run -s /tmp/qga.sock -- tar xz -C /etc/app`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("ga run needs a program: ga run -s ADDR -- PROGRAM [ARG...]")
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			opts.Argv = args
			return runF(c.Context(), opts)
		},
	}
	// Flags after PROGRAM are the program's.
	c.Flags().SetInterspersed(false)
	opts.addressFlag(c)
	c.Flags().StringArrayVar(&opts.Env, "env", nil, "the program's environment, `K=V`; repeat it for more")
	c.Flags().BoolVarP(&opts.NoStdin, "no-stdin", "n", false, "do not read standard input; the program gets none")
	return c
}

func gaRunRun(ctx context.Context, opts *GARunOptions) error {
	ctx, addr, err := opts.start(ctx)
	if err != nil {
		return err
	}
	for _, e := range opts.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return usageErrorf("--env %q: want KEY=VALUE", e)
		}
	}
	p := ga.Program{Path: opts.Argv[0], Args: opts.Argv[1:], Env: opts.Env}
	if !opts.IO.InTTY && !opts.NoStdin && opts.IO.In != nil {
		// More than maxInput never fits: read no further.
		if p.Input, err = io.ReadAll(io.LimitReader(opts.IO.In, maxInput+1)); err != nil {
			return fmt.Errorf("reading standard input: %w", err)
		}
	}
	// Refused before anything is sent: qemu-ga answers a request too
	// long with an error that has no id, after reading all of it.
	if n := p.RequestSize(); n > ga.MaxRequestSize {
		size := fmt.Sprintf("%d bytes", len(p.Input))
		if len(p.Input) > maxInput {
			size = fmt.Sprintf("more than %d bytes", maxInput)
		}
		return &ExitError{Code: ExitQMPError, Err: fmt.Errorf("ga run: standard input is too big (%s): "+
			"the agent takes a program's input in one request of less than 64 MiB, base64-encoded, so about 48 MiB at most; "+
			"copy it into the guest with ga cp and have the program read the file", size)}
	}
	ctx, client, hangUp, err := opts.dialStoppable(ctx, addr)
	if err != nil {
		return err
	}
	defer hangUp()
	if opts.TimeoutSet {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	res, err := client.Run(ctx, p)
	if err != nil {
		return gaError(addr, interruptedExit(ctx, timedOutAfter(err, opts.Timeout), "waiting for the program, which goes on running in the guest"))
	}
	opts.IO.Out.Write(res.Stdout)
	opts.IO.ErrOut.Write(res.Stderr)
	if res.StdoutTruncated {
		fmt.Fprintln(opts.IO.ErrOut, "qmpsh: warning: the agent truncated the program's stdout (it keeps at most 16 MiB of it)")
	}
	if res.StderrTruncated {
		fmt.Fprintln(opts.IO.ErrOut, "qmpsh: warning: the agent truncated the program's stderr (it keeps at most 16 MiB of it)")
	}
	return programExit(p.Path, res)
}

// maxInput is more input than a program can be given: its base64 alone
// fills the longest request the agent takes.
const maxInput = ga.MaxRequestSize / 4 * 3

// programExit is qmpsh's exit for a program that ran to its end: the
// program's status when an exit status can carry it (0 to 255). Any
// other code (a Windows guest's are 32 bits: 256, or 0xC0000005 for a
// crash) must not become another status, 256 as 0 most of all: it is 1,
// with the code on stderr.
func programExit(path string, res *ga.Result) error {
	switch {
	case res.ExitCode == 0:
		return nil
	case res.ExitCode >= 1 && res.ExitCode <= 255:
		return &ExitError{Code: res.ExitCode, Err: fmt.Errorf("%s exited with status %d", path, res.ExitCode), quiet: true}
	case res.Signal != 0:
		return &ExitError{Code: ExitQMPError, Err: fmt.Errorf(
			"%s was ended by signal %d, which no exit status (128+N, at most 255) can carry: qmpsh exits 1", path, res.Signal)}
	}
	return &ExitError{Code: ExitQMPError, Err: fmt.Errorf(
		"%s exited with code %d, which no exit status (1 to 255) can carry: qmpsh exits 1", path, res.ExitCode)}
}
