package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/qmpsh/qmpsh/pkg/protocol"
	"github.com/qmpsh/qmpsh/pkg/proxy"
	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/shell"
)

// DefaultTimeout bounds connecting and negotiating (and, for exec, the
// command) unless --timeout says otherwise.
const DefaultTimeout = 10 * time.Second

// GlobalOptions are the flags every command takes, and the factory it
// was built with.
type GlobalOptions struct {
	*Factory

	Timeout     time.Duration
	TimeoutSet  bool // --timeout was given
	Verbose     bool
	LogFile     string
	Color       string // auto, always, never
	Pretty      bool
	Compact     bool
	NoNegotiate bool
	TLS         TLSOptions // for tls:HOST:PORT addresses
}

// Main runs qmpsh with args (without the program name) in this process,
// with streams ios, and returns the exit status. Errors are printed to
// ios.ErrOut.
func Main(args []string, ios *IOStreams) int {
	return Execute(NewFactory(ios), args)
}

// Execute runs qmpsh with args and the dependencies f, and returns the
// exit status.
func Execute(f *Factory, args []string) int {
	// Standard output is checked: a command whose results cannot be
	// written (a full disk) is stopped, and the run fails.
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	run, ios := *f, *f.IO
	out := &checkedWriter{w: ios.Out, name: "standard output", fail: func(err error) {
		cancel(&outputFailed{err})
		if testHookOutputFailed != nil {
			testHookOutputFailed()
		}
	}}
	ios.Out = out
	run.IO, run.outputs = &ios, &outputs{}
	run.outputs.add(out)
	code := execute(ctx, &run, newRootCmd(&run, lazyCommand(args)), args)
	// Standard output failed: the run was stopped, and what its lost
	// lines would have said cannot count. A --log file that failed
	// makes a run that went well fail.
	if stdout, any := run.outputs.report(ios.ErrOut); stdout || any && code == ExitOK {
		code = ExitQMPError
	}
	return code
}

// testHookOutputFailed, when a test sets it, is called once a run has
// been stopped because its standard output failed.
var testHookOutputFailed func()

// outputFailed is the cause of a run's end when standard output failed.
type outputFailed struct{ err error }

func (e *outputFailed) Error() string { return "writing standard output: " + e.err.Error() }

// execute runs root, built on f, with args and ctx.
func execute(ctx context.Context, f *Factory, root *cobra.Command, args []string) int {
	ios := f.IO
	root.SetArgs(args)
	c, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	var of *outputFailed
	if errors.As(context.Cause(ctx), &of) && (errors.Is(err, context.Canceled) || errors.As(err, new(*shell.OutputError)) ||
		errors.Is(err, of.err)) { // cobra's own writes: --version, completion
		// Stopped because its results could not be written: that is
		// the failure, which Execute reports.
		return ExitQMPError
	}
	var ee *qmp.ExecuteError
	var xe *ExitError
	if errors.As(err, &xe) && xe.quiet {
		return xe.Code
	}
	if errors.As(err, &ee) {
		// "Class: Desc", as QEMU users know it from qmp-shell, with
		// the schema's hint when there is one.
		fmt.Fprintln(ios.ErrOut, shell.Printable(err.Error()))
	} else if !errors.Is(err, shell.ErrCommandFailed) {
		// Printable: a message may quote the server.
		fmt.Fprintln(ios.ErrOut, "qmpsh: "+shell.Printable(err.Error()))
		f.outputs.saidIn(err) // ga cp - names its failed stdout itself
	}
	code := exitCode(err)
	if code == ExitUsage && !(errors.As(err, &xe) && xe.Syntax) {
		// The help of the command that was misused; for an unknown
		// command or help topic, or a hidden command, root's.
		if c == nil || c.Hidden || c.Name() == "help" && c.Parent() == root {
			c = root
		}
		fmt.Fprintf(ios.ErrOut, "Run '%s --help' for usage.\n", c.CommandPath())
	}
	return code
}

// NewRootCmd builds the command tree on f.
func NewRootCmd(fac *Factory) *cobra.Command { return newRootCmd(fac, "") }

// topCommands are root's subcommands in the order they are added, each
// with the function that builds it.
var topCommands = []struct {
	name  string
	build func(*GlobalOptions) *cobra.Command
}{
	{"exec", func(o *GlobalOptions) *cobra.Command { return newExecCmd(o, execRun) }},
	{"connect", func(o *GlobalOptions) *cobra.Command { return newConnectCmd(o, connectRun) }},
	{"accept", func(o *GlobalOptions) *cobra.Command { return newAcceptCmd(o, acceptRun) }},
	{"schema", func(o *GlobalOptions) *cobra.Command { return newSchemaCmd(o, schemaRun) }},
	{"events", func(o *GlobalOptions) *cobra.Command { return newEventsCmd(o, eventsRun) }},
	{"wrap", func(o *GlobalOptions) *cobra.Command { return newWrapCmd(o, wrapRun) }},
	{"ga", gaCommands},
	{"proxy", func(o *GlobalOptions) *cobra.Command { return newProxyCmd(o, proxyRun) }},
	{"job", func(o *GlobalOptions) *cobra.Command { return newJobCmd(o, jobWaitRun, jobListRun) }},
	{"migrate", func(o *GlobalOptions) *cobra.Command { return newMigrateCmd(o, migrateRun) }},
}

// lazyCommand names the one top-level command that args run, when
// building only it (and root) behaves as the whole tree would: args
// start with its name and ask for no help or version, whose output and
// suggestions need the whole tree. Otherwise it returns "". Building
// the whole tree costs a short command such as exec a noticeable share
// of its run.
func lazyCommand(args []string) string {
	if len(args) == 0 {
		return ""
	}
	for _, a := range args[1:] {
		switch {
		case a == "--help" || a == "--version",
			strings.HasPrefix(a, "--help=") || strings.HasPrefix(a, "--version="),
			// -h alone or among other shorthands (-vh); a value that
			// merely looks so only costs the whole tree.
			len(a) > 1 && a[0] == '-' && a[1] != '-' && strings.ContainsRune(a, 'h'):
			return ""
		}
	}
	for _, t := range topCommands {
		if t.name == args[0] {
			return t.name
		}
	}
	return ""
}

// newRootCmd builds root with every command, or with only the command
// named only (see lazyCommand).
func newRootCmd(fac *Factory, only string) *cobra.Command {
	ios := fac.IO
	opts := &GlobalOptions{Factory: fac}
	root := &cobra.Command{
		Use:   "qmpsh",
		Short: "A shell for the QEMU Machine Protocol (QMP)",
		Long: `qmpsh talks to QEMU over QMP: an interactive shell (connect, accept,
wrap), one-shot commands and event streams for scripts (exec, events),
and QEMU's own description of its commands (schema).

Addresses are UNIX socket paths or host:port for TCP; prefix unix: or tcp:
to say which explicitly, tls:HOST:PORT for TCP with TLS (see --tls-dir).
Without an address, $QMP_SOCKET is used.`,
		Example: `  qmpsh connect /tmp/qmp.sock
  qmpsh exec -s /tmp/qmp.sock query-status
  qmpsh events -s /tmp/qmp.sock --name SHUTDOWN --count 1
  qmpsh schema -s /tmp/qmp.sock blockdev-add
  qmpsh wrap -- qemu-system-x86_64 -M q35 -m 2G -display none disk.qcow2`,
		// Any text makes cobra add --version. Reading the build
		// information for the text --version prints is left to the
		// whole tree, which lazyCommand builds for --version: a short
		// command such as exec need not pay for it.
		Version:       "qmpsh",
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(c *cobra.Command, args []string) error {
			if opts.Pretty && opts.Compact {
				return usageErrorf("--pretty and --compact contradict each other: give one")
			}
			opts.TimeoutSet = c.Flags().Changed("timeout")
			if err := checkAddressFlags(c, args); err != nil {
				return err
			}
			opts.TLS.fromEnv(c.Flags(), opts.Getenv)
			return opts.TLS.checkTLSFlags(c, args, opts.Getenv)
		},
	}
	if only == "" {
		root.Version = versionText()
	}
	root.SetIn(ios.In)
	root.SetOut(ios.Out)
	root.SetErr(ios.ErrOut)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &ExitError{Code: ExitUsage, Err: flagValueError(err)}
	})

	f := root.PersistentFlags()
	f.DurationVar(&opts.Timeout, "timeout", DefaultTimeout,
		"bound connecting and capabilities negotiation (exec: and the command; events, when given: the whole run)")
	f.BoolVarP(&opts.Verbose, "verbose", "v", false, "show the JSON sent and received (on stderr; qmpsh's own long replies shortened)")
	f.StringVar(&opts.LogFile, "log", "", "append the session's traffic, with timestamps and secrets redacted, to `FILE`")
	f.StringVar(&opts.Color, "color", "auto", "colour output: auto (on a terminal, unless NO_COLOR is set), always, never")
	root.RegisterFlagCompletionFunc("color", fixedCompletions("auto", "always", "never"))
	f.BoolVar(&opts.Pretty, "pretty", false, "spaced JSON output, indented where a value is wider than 80 columns (default on a terminal)")
	f.BoolVar(&opts.Compact, "compact", false, "print JSON on one line (default when not on a terminal)")
	f.BoolVar(&opts.NoNegotiate, "no-negotiate", false, "skip qmp_capabilities (send it yourself)")
	opts.TLS.addFlags(f)

	// Each command fills its options from the flags and hands them to its
	// run function; tests hand their own.
	for _, t := range topCommands {
		if only == "" || t.name == only {
			root.AddCommand(t.build(opts))
		}
	}
	if only != "" {
		// Only help and completion use cobra's completion command,
		// and they build the whole tree.
		root.CompletionOptions.DisableDefaultCmd = true
	}
	finishTree(root)
	return root
}

// check validates the global flags before anything is sent.
func (o *GlobalOptions) check() error {
	switch o.Color {
	case "auto", "always", "never":
	default:
		return usageErrorf("--color must be auto, always or never, not %q", o.Color)
	}
	if o.Timeout <= 0 {
		return usageErrorf("--timeout must be positive, not %v", o.Timeout)
	}
	return nil
}

// format decides pretty and colour output from the flags and the streams.
func (o *GlobalOptions) format() shell.Format {
	f := shell.Format{Pretty: o.IO.OutTTY}
	if o.Pretty {
		f.Pretty = true
	} else if o.Compact {
		f.Pretty = false
	}
	switch o.Color {
	case "always":
		f.Color = true
	case "auto":
		f.Color = o.IO.ColorOK && o.IO.OutTTY
	}
	return f
}

// address resolves a command's address: the argument, else $QMP_SOCKET
// as getenv reads it. give says how the command takes one ("-s ADDR"),
// for the message when there is none.
func address(getenv func(string) string, arg, give string) (string, error) {
	if arg != "" {
		return arg, nil
	}
	if env := getenv("QMP_SOCKET"); env != "" {
		return env, checkAddress("QMP_SOCKET=", env)
	}
	return "", usageErrorf("no address: give %s (QEMU's -qmp socket) or set QMP_SOCKET", give)
}

// newClient builds a client whose traffic goes to verbose and to the log
// file as the flags ask. The returned function closes the log file.
func (o *GlobalOptions) newClient(verbose io.Writer, extra ...qmp.Option) (*qmp.Client, func(), error) {
	return o.newTargetClient(verbose, "", extra...)
}

// newTargetClient is newClient for a client of target (an address, or ""
// for none), which the client's warnings on stderr name.
func (o *GlobalOptions) newTargetClient(verbose io.Writer, target string, extra ...qmp.Option) (*qmp.Client, func(), error) {
	t, closeLog, err := o.openTraffic(verbose)
	if err != nil {
		return nil, nil, err
	}
	opts := []qmp.Option{
		qmp.WithLogger(t.targetLogger(o.IO.ErrOut, target)),
		// The proxy's bound on QEMU's messages, not the library's
		// 10 MiB: a person asked for this reply (hmp xp, info mtree
		// can print tens of MiB), and past the bound the session ends.
		qmp.WithMaxMessageSize(proxy.MaxUpstreamMessageSize),
	}
	if t.on() {
		opts = append(opts, qmp.WithAsideTrace(t.trace))
	}
	if o.NoNegotiate {
		opts = append(opts, qmp.WithoutNegotiation())
	}
	tlsCfg, err := o.TLS.config()
	if err != nil {
		closeLog()
		return nil, nil, err
	}
	if tlsCfg != nil {
		opts = append(opts, qmp.WithTLS(tlsCfg))
	}
	return o.NewClient(append(opts, extra...)...), closeLog, nil
}

// openTraffic sets up the traffic display and log as -v and --log ask,
// for a QMP or a guest agent client alike: -v's display goes to verbose.
// The returned function closes the log file.
func (o *GlobalOptions) openTraffic(verbose io.Writer) (*traffic, func(), error) {
	t := &traffic{}
	if o.Verbose {
		t.verbose = verbose
	}
	if o.LogFile == "" {
		return t, func() {}, nil
	}
	f, err := os.OpenFile(o.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, &ExitError{Code: ExitUsage, Err: fmt.Errorf("--log: %w", err)}
	}
	log := o.outputs.add(&checkedWriter{w: f, name: "--log " + o.LogFile, done: f.Close})
	t.log = log
	return t, func() { log.Close() }, nil
}

// on says whether any traffic is shown or logged, so that a client
// without -v or --log is given no trace hook at all.
func (t *traffic) on() bool { return t.verbose != nil || t.log != nil }

// logger is the client's logger: warnings as lines on w, serialised with
// the traffic lines so the two never interleave mid-line.
func (t *traffic) logger(w io.Writer) *slog.Logger { return t.targetLogger(w, "") }

// targetLogger is logger for a client of target, whose address each line
// names, so that of many targets' warnings each says whose it is.
func (t *traffic) targetLogger(w io.Writer, target string) *slog.Logger {
	return slog.New(&lineHandler{mu: &t.mu, w: w, level: slog.LevelWarn, target: target})
}

// traffic shows the client's messages as "--> msg" and "<-- msg": on the
// verbose display (-v) and, with timestamps, in the traffic log (--log).
// The display shortens the long replies to qmpsh's own calls (the
// schema it fetches for itself); the log keeps everything.
type traffic struct {
	mu      sync.Mutex
	verbose io.Writer // nil unless -v
	log     io.Writer // nil unless --log
	line    []byte    // the line being written, reused
	redact  redactor  // secrets never reach either in clear
}

func (t *traffic) trace(dir protocol.Direction, msg []byte, aside bool) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	msg = t.redact.message("", msg)
	t.line = append(append(append(t.line[:0], dir.String()...), ' '), msg...)
	t.line = append(t.line, '\n')
	if t.verbose != nil {
		// Printable: a server's line that is not JSON may carry
		// terminal escapes; the --log file keeps it whole.
		if aside && dir == protocol.Received && len(msg) > shortenOver {
			io.WriteString(t.verbose, shell.Printable(dir.String()+" "+string(shorten(msg))+"\n"))
		} else {
			io.WriteString(t.verbose, shell.Printable(string(t.line)))
		}
	}
	if t.log != nil {
		logLine(t.log, now, t.line)
	}
	if cap(t.line) > 64<<10 {
		t.line = nil // do not keep a huge message's buffer
	}
}

// flagValueError says what is wrong with a flag's value in qmpsh's words:
// pflag's message ends in Go's ("strconv.ParseInt: parsing "x": invalid
// syntax", "time: invalid duration"). Other flag errors are as they are.
func flagValueError(err error) error {
	var ive *pflag.InvalidValueError
	if !errors.As(err, &ive) {
		return err
	}
	cause := ive.Unwrap()
	if re := (*repeatedFlagError)(nil); errors.As(cause, &re) {
		name := flagName(ive.GetFlag())
		return fmt.Errorf("%s given twice (%s, then %s): this command talks to one server; give %s once",
			name, shellQuote(re.first), shellQuote(ive.GetValue()), name)
	}
	why := cause.Error()
	var ne *strconv.NumError
	switch {
	case errors.As(cause, &ne) && errors.Is(ne.Err, strconv.ErrRange):
		why = "out of range"
	case errors.As(cause, &ne) && ne.Func == "ParseBool":
		why = "want true or false"
	case errors.As(cause, &ne):
		why = "want a whole number"
	case strings.HasPrefix(why, "time: "):
		why = "want a duration such as 500ms, 10s or 1m"
	}
	return fmt.Errorf("invalid value %q for --%s: %s", ive.GetValue(), ive.GetFlag().Name, why)
}

// logLine writes line to the traffic log w after its time, in UTC with
// microseconds: the same stamp for the client's log and the proxy's.
func logLine(w io.Writer, now time.Time, line []byte) {
	stamp := now.UTC().AppendFormat(make([]byte, 0, 64+len(line)), "2006-01-02T15:04:05.000000Z")
	w.Write(append(append(stamp, ' '), line...))
}

// shortenOver is the size over which -v shortens a reply to qmpsh's own
// call.
const shortenOver = 1024

// shorten summarizes a long reply: {"return": [... 1843 entries, 207 KB],
// "id": "qmpsh-1"}. An error reply, or one it cannot read, stays whole.
func shorten(msg []byte) []byte {
	var r struct {
		Return json.RawMessage `json:"return"`
		ID     json.RawMessage `json:"id"`
	}
	if json.Unmarshal(msg, &r) != nil || len(r.Return) == 0 {
		return msg
	}
	var what string
	switch r.Return[0] {
	case '[':
		var a []json.RawMessage
		json.Unmarshal(r.Return, &a)
		what = fmt.Sprintf("[... %d entries, %s]", len(a), byteSize(len(msg)))
	case '{':
		var m map[string]json.RawMessage
		json.Unmarshal(r.Return, &m)
		what = fmt.Sprintf("{... %d members, %s}", len(m), byteSize(len(msg)))
	default:
		what = fmt.Sprintf("... %s", byteSize(len(msg)))
	}
	out := `{"return": ` + what
	if r.ID != nil {
		out += `, "id": ` + string(r.ID)
	}
	return []byte(out + "}")
}

// byteSize says n in bytes, KB or MB (of 1000).
func byteSize(n int) string {
	switch {
	case n < 1000:
		return fmt.Sprintf("%d bytes", n)
	case n < 1000*1000:
		return fmt.Sprintf("%d KB", (n+500)/1000)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}

// lineHandler prints log records at or above level on stderr, one line
// each: "qmpsh: msg key=value...", "qmpsh: warning: msg..." for a warning
// (a listener dropping events, a reply nobody asked for, a proxy's client
// closed), "qmpsh: warning: TARGET: msg..." when target is set. The
// client's and the proxy's logs are both printed by it.
type lineHandler struct {
	mu     *sync.Mutex // the traffic's: the two may share a writer
	w      io.Writer
	level  slog.Level
	target string // the address the client talks to, or ""
}

func (h *lineHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *lineHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString("qmpsh: ")
	if r.Level >= slog.LevelWarn {
		b.WriteString("warning: ")
	}
	if h.target != "" {
		b.WriteString(h.target + ": ")
	}
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != "logger" {
			fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		}
		return true
	})
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	// Printable: an attribute may be the server's (an event's name).
	io.WriteString(h.w, shell.Printable(b.String()))
	return nil
}

func (h *lineHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *lineHandler) WithGroup(string) slog.Handler      { return h }
