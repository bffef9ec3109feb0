package shell

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/qmpsh/qmpsh/pkg/protocol"
	"github.com/qmpsh/qmpsh/pkg/qapi"
	"github.com/qmpsh/qmpsh/pkg/qmp"
)

// ErrCommandFailed is returned by Run when at least one command failed
// (an error reply, a syntax error), so a script can tell.
var ErrCommandFailed = errors.New("a command failed")

// ErrCommandTimedOut is returned by Run, on a pipe, when a command got
// no reply within the client's bound on a call (the guest agent's, set by
// --timeout): a failed command, and a timeout, so that a script can tell
// a silent peer from a refusal. errors.Is matches it to ErrCommandFailed
// and to context.DeadlineExceeded.
var ErrCommandTimedOut error = commandTimedOut{}

type commandTimedOut struct{}

func (commandTimedOut) Error() string { return "a command timed out" }

func (commandTimedOut) Is(target error) bool {
	return target == ErrCommandFailed || target == context.DeadlineExceeded
}

// ConnectionLostError is returned by Run when a command could not be run
// or completed because the connection was lost.
type ConnectionLostError struct {
	Cause error
	// Redialled says that the shell redialled (Config.Reconnect): the
	// session went on, without the commands refused or cut off meanwhile.
	Redialled bool
}

func (e *ConnectionLostError) Error() string {
	msg := "connection lost"
	if e.Cause != nil {
		msg += ": " + e.Cause.Error()
	}
	if e.Redialled {
		return "commands were refused or cut off while the connection was down (" + msg + ")"
	}
	return msg
}

// Unwrap returns the cause.
func (e *ConnectionLostError) Unwrap() error { return e.Cause }

// InputError is returned by Run when the editor could not read a line
// (standard input unreadable): no fault of the connection's.
type InputError struct {
	Err error
}

func (e *InputError) Error() string { return "reading input: " + e.Err.Error() }

// Unwrap returns the editor's error.
func (e *InputError) Unwrap() error { return e.Err }

// OutputError is returned by Run when a write to the editor's output
// failed (a full disk behind a redirection): results would be lost, so
// the shell runs nothing more. A closed pipe is not one: the process
// dies of SIGPIPE, or its caller watches for EPIPE itself.
type OutputError struct {
	Err error
}

func (e *OutputError) Error() string { return "writing output: " + e.Err.Error() }

// Unwrap returns the write's error.
func (e *OutputError) Unwrap() error { return e.Err }

// failWriter keeps the first error of writes to w other than EPIPE.
type failWriter struct {
	w   io.Writer
	mu  sync.Mutex
	err error
}

func (f *failWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err != nil && !errors.Is(err, syscall.EPIPE) {
		f.mu.Lock()
		if f.err == nil {
			f.err = err
		}
		f.mu.Unlock()
	}
	return n, err
}

func (f *failWriter) failed() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Config configures Run.
type Config struct {
	Client *qmp.Client // connected and negotiated
	// Agent, set instead of Client, runs the shell on a guest agent,
	// which speaks QMP's wire format without QMP's events, schema, HMP
	// or file descriptor passing: lines are parsed and printed as for
	// QMP, and hmp, sendfd and transaction( are not built-ins. Give it a
	// Completer whose Fetch lists the agent's commands, and a Help.
	Agent Agent
	// Help, if set, replaces the built-in help text.
	Help   string
	Editor Editor
	// Err receives error messages and notices; default:
	// Editor.Writer(). Results and events go to Editor.Writer().
	Err    io.Writer
	Format Format
	// HMP sends every line that is not a built-in to the human monitor.
	HMP bool
	// Completer, if set, is the terminal's completer; help shares its
	// schema. Default: one of the shell's own, fetched on first help.
	Completer *Completer
	// Reconnect, if set, keeps the shell alive when the connection is
	// lost: the shell reports the loss, calls Reconnect (which connects
	// and negotiates Client again) until it succeeds, waiting between
	// attempts from ReconnectMinDelay, doubling up to ReconnectMaxDelay,
	// and reports the return. Meanwhile the prompt says so and commands
	// are refused, not queued; Run then ends with a *ConnectionLostError
	// only at the end of input, so a script can tell.
	Reconnect func(ctx context.Context) error
	// QuitsQEMU says, for help, that leaving the shell quits QEMU.
	QuitsQEMU bool
	// QuitAccepted, if set, is called after QEMU accepted a quit and
	// hung up (or did not within quitHangUp), before the next line is
	// read; its context ends with Ctrl-C. wrap waits there for QEMU's
	// exit, which ends the input.
	QuitAccepted func(context.Context)
	// JSONOut says that results go where a program reads JSON lines
	// (stdout is not a terminal): help and HMP's replies, text for a
	// person otherwise, are printed as JSON, one line each.
	JSONOut bool
	// Page, if set, shows help text through a pager when it is too long
	// for the screen, and reports whether it did; otherwise help prints
	// it.
	Page func(text string) bool
}

// Run reads lines from the editor and runs them until end of input or a
// quit. It returns nil, ErrCommandFailed, ErrCommandTimedOut, a
// *ConnectionLostError, an *InputError with the editor's own error, or an
// *OutputError. The first two are for scripts: an interactive session,
// where a person read each error as it came, ends with nil however many
// commands failed.
func Run(ctx context.Context, cfg Config) error {
	out := &failWriter{w: cfg.Editor.Writer()}
	sh := &shell{Config: cfg, out: out}
	if sh.Err == nil {
		sh.Err = sh.out
	}
	if sh.Completer == nil {
		sh.Completer = &Completer{Client: sh.Client}
		if sh.Agent != nil {
			sh.Completer.Fetch = func(context.Context) (*qapi.Schema, error) { return nil, nil }
		}
	}
	sh.parser.Schema = sh.Completer.Schema
	sh.setPrompt()
	stop := sh.startPrinter()
	defer stop()
	if sh.Reconnect != nil {
		stopRedial := sh.startRedialer(ctx)
		defer stopRedial()
	}
	// Ctrl-C outside ReadLine must not end the shell: take it from the
	// editor for the whole session, and let callContext pass it on to the
	// command waiting for a reply, if any.
	interrupts, stopInterrupts := sh.Editor.Interrupts()
	defer stopInterrupts()
	sh.interrupts = interrupts

	for {
		if err := out.failed(); err != nil {
			return &OutputError{Err: err}
		}
		line, err := sh.Editor.ReadLine()
		switch {
		case errors.Is(err, ErrInterrupt):
			if sh.parser.InBlock() {
				sh.parser.Abandon()
				sh.setPrompt()
				sh.notice("transaction abandoned")
			}
			continue
		case errors.Is(err, io.EOF):
			if sh.parser.InBlock() {
				// Never a silent end: a script that lost its ")"
				// would think the transaction ran.
				sh.parser.Abandon()
				sh.fail(ErrUnclosedTransaction)
			}
			return sh.status()
		case errors.As(err, new(*LineTooLongError)):
			// A bad line, as a syntax error is: the next ones run.
			if sh.parser.InBlock() {
				sh.txRejected = true
			}
			sh.fail(err)
			continue
		case err != nil:
			return &InputError{Err: err}
		}
		// An event may have failed to print while the line was read.
		if err := out.failed(); err != nil {
			return &OutputError{Err: err}
		}
		if ctx.Err() != nil {
			// Ended while the line was read (the caller's output
			// failed, a signal): the line is not run, as at the end
			// of input.
			return sh.status()
		}
		if sh.handle(ctx, line) {
			return sh.status()
		}
		if sh.lost != nil && !sh.Editor.Interactive() && sh.Reconnect == nil {
			return sh.status()
		}
	}
}

type shell struct {
	Config
	out    io.Writer
	parser Parser
	failed bool
	// timedOut: a command failed for want of a reply in time.
	timedOut bool
	quit     bool // a built-in asked to leave
	// txRejected: a line of the open transaction block was rejected
	// on a pipe, where no one types it again; see handle.
	txRejected bool
	lost       *ConnectionLostError

	interrupts <-chan os.Signal // the editor's Ctrl-C outside ReadLine

	flush chan chan struct{} // asks the printer to print what has arrived
	pause chan chan struct{} // holds the printer until the channel sent is closed

	// Notices from other goroutines wait while a command is in flight;
	// see lateNotice.
	noticeMu  sync.Mutex
	inCommand bool
	held      []string

	// The prompt is set by the loop (transaction, HMP) and by the
	// redialer (connection down), under promptMu so the last one set
	// reflects both.
	promptMu   sync.Mutex
	basePrompt string
	redial     redialState
}

func (sh *shell) status() error {
	switch {
	// A person who saw the shell reconnect is told nothing more by an
	// exit status; a script is told that a command was lost.
	case sh.lost != nil && !(sh.Reconnect != nil && sh.Editor.Interactive()):
		if sh.Reconnect != nil {
			return &ConnectionLostError{Cause: sh.lost.Cause, Redialled: true}
		}
		return sh.lost
	case sh.timedOut && !sh.Editor.Interactive():
		return ErrCommandTimedOut
	case sh.failed && !sh.Editor.Interactive():
		return ErrCommandFailed
	}
	return nil
}

func (sh *shell) setPrompt() {
	base := "(QEMU) "
	if sh.Agent != nil {
		base = "(QGA) "
	}
	switch {
	case sh.parser.InBlock():
		base = "transaction> "
	case sh.HMP:
		base = "(HMP) "
	}
	sh.promptMu.Lock()
	defer sh.promptMu.Unlock()
	sh.basePrompt = base
	sh.applyPrompt()
}

// applyPrompt shows the prompt for the mode and the connection's state;
// promptMu must be held.
func (sh *shell) applyPrompt() {
	if sh.redial.down.Load() {
		sh.Editor.SetPrompt("[disconnected] " + sh.basePrompt)
		return
	}
	sh.Editor.SetPrompt(sh.basePrompt)
}

// handle runs one line; it returns true when the shell should exit.
func (sh *shell) handle(ctx context.Context, line string) bool {
	if !sh.parser.InBlock() && sh.builtin(ctx, line) {
		return sh.quit
	}
	inBlock := sh.parser.InBlock()
	if !inBlock {
		sh.txRejected = false
	}
	in, err := sh.parser.Parse(line)
	if sh.parser.InBlock() != inBlock {
		sh.setPrompt()
	}
	if err != nil {
		// A rejected action line leaves the block open, for a person
		// to type it again. A script cannot: sending the block's other
		// actions at its ")" would run part of what was meant to be all
		// or nothing (a bitmap cleared without the backup that goes
		// with it), so the whole block fails there instead. A lone
		// nested "transaction(" drops no action: the block still runs.
		if sh.parser.InBlock() && !sh.Editor.Interactive() && strings.TrimSpace(line) != transactionOpen {
			sh.txRejected = true
		}
		sh.fail(err)
		return false
	}
	if in != nil && inBlock && sh.txRejected {
		sh.fail(ErrRejectedTransaction)
		return false
	}
	if in != nil {
		sh.run(ctx, in)
	}
	return false
}

// builtin runs line if it is one of the shell's own commands, or any line
// in HMP mode, and reports whether it was; quit is set to leave.
func (sh *shell) builtin(ctx context.Context, line string) bool {
	trimmed := strings.TrimSpace(line)
	word, rest, _ := strings.Cut(trimmed, " ")
	if sh.Agent != nil && word != "quit" && word != "exit" && word != "help" {
		return false
	}
	switch word {
	case "quit", "exit":
		sh.quit = true
		return true
	case "help":
		if !sh.HMP || rest == "" {
			sh.help(strings.TrimSpace(rest))
			return true
		}
	case "hmp":
		sh.hmp(ctx, strings.TrimSpace(rest))
		return true
	case "sendfd":
		sh.sendfd(ctx, rest)
		return true
	}
	if sh.HMP {
		if trimmed != "" {
			sh.hmp(ctx, trimmed)
		}
		return true
	}
	return false
}

const helpText = `Type a QMP command as  command-name key=value ...  (qmp-shell syntax):
  values are integers, true/false, JSON objects or arrays, or strings
  ("..." or '...' to include spaces); a.b=1 builds {"a": {"b": 1}}.
A line starting with { is sent as it is, as raw JSON.
Tab completes command names, argument names and enum values from QEMU's
schema; help COMMAND (or EVENT) shows its arguments and return type.

Built-in commands (not sent to QEMU):
` + builtinHelpHelp + builtinHelpHMP + builtinHelpSendfd + builtinHelpTransaction + builtinHelpQuit + `Ctrl-C abandons the line being typed, or stops waiting for a reply.
`

// Each built-in's lines in helpText, also what help NAME prints of it.
const (
	builtinHelpHelp   = "  help [NAME]           this text, or a command's or event's schema\n"
	builtinHelpHMP    = "  hmp COMMAND-LINE      run a human monitor command (human-monitor-command)\n"
	builtinHelpSendfd = `  sendfd PATH fdname=NAME [mode=rw|ro|wo]
                        open a local file and pass it to QEMU with getfd
  sendfd PATH [fdset-id=N] [opaque=TEXT] [mode=rw|ro|wo]
                        ... or with add-fd, into fd set N (default: a new one)
`
	builtinHelpTransaction = `  transaction(          start a transaction: one action per line
                        (type key=value ...), then ) to send it
`
	builtinHelpQuit = "  quit, exit, Ctrl-D    %s\n"
)

// builtinHelp returns help's lines on the built-in name (quit taken as
// QMP's command, which the schema describes), and whether it is one.
func (sh *shell) builtinHelp(name string) (string, bool) {
	leave := leaveKeeps
	if sh.QuitsQEMU {
		leave = leaveQuits
	}
	switch {
	case sh.Agent != nil && (name == "quit" || name == "exit"):
		return fmt.Sprintf(builtinHelpQuit, "leave the shell"), true
	case sh.Agent != nil && name == "help":
		return "  help                  this text\n", true
	case sh.Agent != nil:
		return "", false
	case name == "help":
		return builtinHelpHelp, true
	case name == "exit":
		return fmt.Sprintf(builtinHelpQuit, leave), true
	case name == "hmp":
		return builtinHelpHMP, true
	case name == "sendfd":
		return builtinHelpSendfd, true
	case name == "transaction(", name == "transaction":
		return builtinHelpTransaction, true
	}
	return "", false
}

const (
	leaveKeeps = `leave the shell; QEMU keeps running
                        (to stop QEMU, type {"execute": "quit"})`
	leaveQuits = "leave the shell and quit QEMU (qmpsh wrap started it)"
)

// help prints the built-ins, or a command's or event's schema.
func (sh *shell) help(name string) {
	if sh.JSONOut {
		sh.helpJSON(name)
		return
	}
	if name == "" && sh.Help != "" {
		io.WriteString(sh.out, sh.Help)
		return
	}
	if name == "" {
		leave := leaveKeeps
		if sh.QuitsQEMU {
			leave = leaveQuits
		}
		fmt.Fprintf(sh.out, helpText, leave)
		return
	}
	text, err := sh.completer().Schema().Help(name)
	if err != nil {
		if b, ok := sh.builtinHelp(name); ok {
			io.WriteString(sh.out, "Built-in command (not sent to QEMU):\n"+b)
			return
		}
		sh.fail(err)
		return
	}
	text = Printable(text) // the schema's names are the server's
	if name == "quit" && sh.Agent == nil {
		// The word quit is the shell's own: say which quit this is.
		text = "QMP's quit, sent as {\"execute\": \"quit\"} (typed as a word, quit leaves the shell):\n" + text
	}
	if sh.Page != nil && sh.paging(func() bool { return sh.Page(text) }) {
		return
	}
	io.WriteString(sh.out, text)
	if !strings.HasSuffix(text, "\n") {
		io.WriteString(sh.out, "\n")
	}
}

// builtinSummary is a built-in command and what it does, for help on a
// pipe.
type builtinSummary struct {
	Name    string `json:"name"`
	Summary string `json:"summary"`
}

// helpJSON is help for a program reading JSON lines: the built-ins as an
// array of {"name", "summary"}, or NAME's schema entries as --json
// prints them.
func (sh *shell) helpJSON(name string) {
	list := sh.builtinSummaries()
	if name != "" {
		b, err := sh.completer().Schema().HelpJSON(name)
		if err != nil {
			// A built-in that is no QMP command: its summary.
			i := slices.IndexFunc(list, func(b builtinSummary) bool {
				return b.Name == name || b.Name == "transaction(" && name == "transaction"
			})
			if i < 0 || name == "quit" && sh.Agent == nil {
				sh.fail(err)
				return
			}
			b, _ = json.Marshal(list[i]) // strings always encode
		}
		sh.out.Write(sh.Format.JSON(b))
		return
	}
	b, _ := json.Marshal(list) // strings always encode
	sh.out.Write(sh.Format.JSON(b))
}

// builtinSummaries lists the built-ins, for help on a pipe.
func (sh *shell) builtinSummaries() []builtinSummary {
	leave := "leave the shell; QEMU keeps running"
	switch {
	case sh.Agent != nil:
		leave = "leave the shell"
	case sh.QuitsQEMU:
		leave = "leave the shell and quit QEMU"
	}
	list := []builtinSummary{{"help", "list the built-ins, or show a command's or event's schema (help NAME)"}}
	if sh.Agent == nil {
		list = append(list,
			builtinSummary{"hmp", "run a human monitor command (human-monitor-command)"},
			builtinSummary{"sendfd", "open a local file and pass it to QEMU with getfd or add-fd"},
			builtinSummary{"transaction(", "start a transaction: one action per line, then ) to send it"})
	}
	return append(list, builtinSummary{"quit", leave}, builtinSummary{"exit", leave})
}

func (sh *shell) completer() *Completer { return sh.Completer }

// callContext is the context of one command: on a terminal, Ctrl-C
// cancels it (the wait, not the command, which QEMU may still run). Until
// the returned cancel is called, after the command's outcome has been
// printed, notices of the session's end are held back (see lateNotice).
// cancel also stops the goroutine that watches for Ctrl-C.
func (sh *shell) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	sh.beginCommand()
	cctx, cancel := context.WithCancel(ctx)
	if sh.interrupts == nil {
		return cctx, func() {
			cancel()
			sh.endCommand()
		}
	}
	// A Ctrl-C pressed before this command started was meant for no
	// command: drop it.
	select {
	case <-sh.interrupts:
	default:
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-sh.interrupts:
			cancel()
		case <-cctx.Done():
		}
	}()
	return cctx, func() {
		cancel()
		<-done
		sh.endCommand()
	}
}

// beginCommand holds back notices of the session's end until
// endCommand: QEMU answers a quit, then hangs up, and the answer must
// come first.
func (sh *shell) beginCommand() {
	sh.noticeMu.Lock()
	defer sh.noticeMu.Unlock()
	sh.inCommand = true
}

// endCommand prints the notices held back since beginCommand.
func (sh *shell) endCommand() {
	sh.noticeMu.Lock()
	defer sh.noticeMu.Unlock()
	sh.inCommand = false
	for _, n := range sh.held {
		sh.notice(n)
	}
	sh.held = nil
}

// lateNotice prints a notice about the connection, which may come from
// another goroutine: now, or after the outcome of the command in flight.
func (sh *shell) lateNotice(s string) {
	sh.noticeMu.Lock()
	defer sh.noticeMu.Unlock()
	if sh.inCommand {
		sh.held = append(sh.held, s)
		return
	}
	sh.notice(s)
}

// run types in by the server's schema (fetched on the first command
// that needs it) and sends it: a line the schema rejects is an error and
// nothing is sent. Raw JSON is not checked, and a command the schema does
// not know is sent with guessed values, for the server to say whether it
// exists; an error reply is explained by the schema.
func (sh *shell) run(ctx context.Context, in *Input) {
	var s *qapi.Schema
	if in.Raw == nil {
		s = sh.completer().Schema()
	}
	cmd, err := in.Command(s)
	if err != nil {
		sh.fail(err)
		return
	}
	if sh.refused() {
		return
	}
	cctx, cancel := sh.callContext(ctx)
	defer cancel()
	ret, err := sh.send(cctx, cmd)
	if err != nil && cctx.Err() != nil && ctx.Err() == nil {
		sh.interrupted()
		return
	}
	if err != nil {
		err = in.Explain(s, err)
	}
	if err == nil && cmd.command() == "qmp_capabilities" {
		// With --no-negotiate, a schema asked for before this was
		// refused ("Expecting capabilities negotiation"): ask again.
		sh.completer().Reset()
	}
	sh.report(ret, err, false)
	if err == nil && sh.Agent == nil && cmd.command() == "quit" {
		sh.awaitHangUp(cctx) // Ctrl-C ends the wait too
	}
}

// quitHangUp bounds how long the shell waits, after QEMU accepted a
// quit, for QEMU to hang up.
const quitHangUp = 5 * time.Second

// awaitHangUp waits, after QEMU accepted a quit, until it hangs up, so
// that the next line meets a closed connection however soon it comes: on
// a pipe it is refused, deterministically (not sent, where it could have
// been sent and cut off), and under wrap QEMU's exit ends the input
// first. A server that answers quit and stays is waited for quitHangUp.
func (sh *shell) awaitHangUp(ctx context.Context) {
	wctx, cancel := context.WithTimeout(ctx, quitHangUp)
	defer cancel()
	sh.Client.WaitForStateChange(wctx, protocol.Running)
	if sh.QuitAccepted != nil {
		sh.QuitAccepted(ctx)
	}
}

// interrupted says that Ctrl-C stopped the wait for a reply, after the
// events that came before. On a terminal, which is not in raw mode while
// the shell waits, the kernel has echoed ^C where the cursor was: the
// notice starts a line of its own.
func (sh *shell) interrupted() {
	if sh.Editor.Interactive() {
		io.WriteString(sh.Err, "\n")
	}
	sh.flushEvents()
	sh.notice("interrupted: stopped waiting for the reply")
}

func (sh *shell) hmp(ctx context.Context, cmdline string) {
	if cmdline == "" {
		sh.fail(errors.New("hmp: expected a human monitor command, e.g. hmp info status"))
		return
	}
	if sh.refused() {
		return
	}
	cctx, cancel := sh.callContext(ctx)
	defer cancel()
	ret, err := Send(cctx, sh.Client, &Command{Name: "human-monitor-command", Args: map[string]any{"command-line": cmdline}})
	if err != nil && cctx.Err() != nil && ctx.Err() == nil {
		sh.interrupted()
		return
	}
	sh.report(ret, err, true)
	if err == nil && hmpQuit(cmdline, ret) {
		sh.awaitHangUp(cctx) // Ctrl-C ends the wait too
	}
}

// hmpQuit reports whether an HMP command line and what it returned are a
// quit QEMU took: HMP's own errors come back as text ("quit|q:
// extraneous characters..."), so only a bare quit or q that said nothing.
func hmpQuit(cmdline string, ret json.RawMessage) bool {
	w := strings.TrimSpace(cmdline)
	return (w == "quit" || w == "q") && string(ret) == `""`
}

// hmpLineEnds turns HMP's "\r\n" line ends into "\n".
func hmpLineEnds(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

// HMPText is ret, human-monitor-command's return value, with HMP's line
// ends made "\n", as the shell prints it: one JSON string that jq -r
// turns back into the text. Any other value is returned unchanged.
func HMPText(ret json.RawMessage) json.RawMessage {
	var s string
	if json.Unmarshal(ret, &s) != nil {
		return ret
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(hmpLineEnds(s))
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// report prints a command's outcome after the events that arrived before
// it, so the output reads in the order QEMU said things.
func (sh *shell) report(ret json.RawMessage, err error, text bool) {
	sh.flushEvents()
	var de *qmp.DisconnectedError
	var se *protocol.StateError
	var ee *qmp.ExecuteError
	switch {
	case err == nil && ret == nil:
		// A command that never replies (an agent's guest-shutdown).
	case err == nil && text:
		var s string
		if json.Unmarshal(ret, &s) == nil {
			if sh.JSONOut {
				sh.out.Write(append(HMPText(ret), '\n'))
				return
			}
			s = Printable(hmpLineEnds(s))
			io.WriteString(sh.out, s)
			if s != "" && !strings.HasSuffix(s, "\n") {
				io.WriteString(sh.out, "\n")
			}
			return
		}
		sh.out.Write(sh.Format.JSON(ret))
	case err == nil:
		sh.out.Write(sh.Format.JSON(ret))
	case errors.As(err, &ee):
		sh.fail(err)
	case errors.As(err, &de) && !de.NotSent:
		// Sent, and cut off: "not sent" would tell the person that
		// the peer did nothing, which may be false (a device_del done).
		sh.lost = &ConnectionLostError{Cause: sh.conn().Err()}
		fmt.Fprintln(sh.Err, sh.Format.Error(fmt.Errorf("%v (%s may have run it)", de, sh.peer())))
	case errors.As(err, &se), errors.As(err, &de), sh.Agent != nil && !sh.connected():
		sh.lost = &ConnectionLostError{Cause: sh.conn().Err()}
		sh.refuse()
	case errors.Is(err, context.DeadlineExceeded):
		sh.timedOut = true
		sh.fail(err)
	default:
		sh.fail(err)
	}
}

// peer names what the shell talks to, for messages.
func (sh *shell) peer() string {
	if sh.Agent != nil {
		return "the guest agent"
	}
	return "QEMU"
}

func (sh *shell) connected() bool { return sh.conn().Runstate() == protocol.Running }

func (sh *shell) refuse() {
	fmt.Fprintln(sh.Err, sh.Format.Error(fmt.Errorf("not sent: %v", sh.lost)))
}

// refused refuses a command, saying why, when the connection is known to
// be down: lost for good, or being redialled.
func (sh *shell) refused() bool {
	if sh.Reconnect != nil && sh.redial.down.Load() {
		cause := sh.redial.cause()
		if sh.lost == nil {
			sh.lost = &ConnectionLostError{Cause: cause}
		}
		fmt.Fprintln(sh.Err, sh.Format.Error(fmt.Errorf("not sent: disconnected, reconnecting (%v)", sh.redial.status())))
		return true
	}
	if sh.lost != nil && !sh.connected() {
		sh.refuse()
		return true
	}
	return false
}

func (sh *shell) fail(err error) {
	sh.failed = true
	fmt.Fprintln(sh.Err, sh.Format.Error(err))
}

// notice tells the person what happened (a lost connection, an
// interrupted wait): on the terminal, else with the errors, for standard
// output carries results only.
func (sh *shell) notice(s string) { fmt.Fprintln(sh.Err, sh.Format.Notice(s)) }

// startPrinter starts the goroutine that prints events and connection
// changes as they arrive; the returned function stops it, after it has
// printed what had arrived.
func (sh *shell) startPrinter() (stop func()) {
	var l *qmp.Listener // nil for an agent, which has no events
	var events <-chan qmp.Event
	if sh.Client != nil {
		l = sh.Client.Listen()
		events = l.Events()
	}
	sh.flush = make(chan chan struct{})
	sh.pause = make(chan chan struct{})
	done := make(chan struct{})
	stopped := make(chan struct{})

	printQueued := func() {
		if l == nil {
			return
		}
		for ev, ok := l.Take(); ok; ev, ok = l.Take() {
			sh.printEvent(ev)
		}
	}
	// The state the session starts in, read before Run goes on, so that
	// a connection lost before the goroutine first runs is still seen
	// to change from Running.
	state, changed := sh.conn().RunstateChanged()
	go func() {
		defer close(stopped)
		for {
			select {
			case ev := <-events:
				sh.printEvent(ev)
			case <-changed:
				was := state
				state, changed = sh.conn().RunstateChanged()
				if was == protocol.Running && state != protocol.Running {
					sh.sessionEnded()
				}
			case ack := <-sh.flush:
				printQueued()
				close(ack)
			case resume := <-sh.pause:
				// Only the loop pauses, and it resumes before it can
				// stop the printer: done cannot come meanwhile.
				<-resume
			case <-done:
				printQueued()
				// The session may have ended just before the loop
				// did (under wrap, QEMU's exit ends both): the select
				// above may have taken done first.
				if now := sh.conn().Runstate(); state == protocol.Running && now != protocol.Running {
					sh.sessionEnded()
				}
				return
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
		if l != nil {
			l.Close()
		}
	}
}

// printEvent prints an event: for a person, a header with its name and
// time above its data; for a program reading JSON (JSONOut), the event as
// QEMU sent it, even under --pretty, which then only indents it.
func (sh *shell) printEvent(ev qmp.Event) {
	if sh.JSONOut && sh.Format.Pretty {
		line, _ := ev.MarshalJSON() // the data was valid JSON when read
		sh.out.Write(sh.Format.JSON(line))
		return
	}
	sh.out.Write(sh.Format.Event(ev))
}

// paging runs page, which may hand the terminal to a pager, with the
// printer held: an event printed meanwhile would be drawn over the
// pager's screen. Events wait in the listener, to be printed after.
func (sh *shell) paging(page func() bool) bool {
	resume := make(chan struct{})
	sh.pause <- resume
	defer close(resume)
	return page()
}

func (sh *shell) flushEvents() {
	ack := make(chan struct{})
	sh.flush <- ack
	<-ack
}

// sessionEnded reports the end of the session to a person, unless the
// redialer does. A script is told by the refusal of its next command and
// the exit status, which do not depend on when the end was noticed.
func (sh *shell) sessionEnded() {
	if sh.Reconnect != nil || !sh.Editor.Interactive() {
		return
	}
	if cause := sh.conn().Err(); cause != nil {
		sh.lateNotice("connection lost: " + cause.Error())
	} else {
		sh.lateNotice("disconnected")
	}
}

// Completer completes lines from the server's QAPI schema (fetched once,
// on the first Tab or help, with query-qmp-schema; a server without it
// degrades to query-commands names, silently): command names and the
// shell's built-ins, argument names, nested members and enum values.
type Completer struct {
	Client  *qmp.Client
	Timeout time.Duration // for fetching the schema; default 5s
	// Fetch, if set, gets the schema instead of asking Client: a guest
	// agent's completer makes one of the agent's command names
	// (qapi.FromCommands).
	Fetch func(ctx context.Context) (*qapi.Schema, error)
	// Builtins, if set, are the built-in commands Tab offers instead of
	// QMP's (an agent's shell has no hmp, sendfd or transaction).
	Builtins []string
	// HMP: every line is a human monitor command, so "info" completes
	// as "hmp info" does.
	HMP bool

	mu      sync.Mutex
	fetched bool
	schema  *qapi.Schema // nil when the server answered neither query
	info    hmpInfo      // "help info"'s subcommands
}

var builtins = []string{"exit", "help", "hmp", "quit", "sendfd", "transaction("}

func (c *Completer) builtins() []string {
	if c.Builtins != nil {
		return c.Builtins
	}
	return builtins
}

// Schema returns the server's schema, fetching it on the first call.
func (c *Completer) Schema() *qapi.Schema {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fetched {
		return c.schema
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if c.Fetch != nil {
		c.schema, _ = c.Fetch(ctx)
		c.fetched = c.schema != nil
		return c.schema
	}
	c.schema, _ = FetchSchema(ctx, c.Client)
	// A lost connection leaves nothing learnt: ask again next time.
	c.fetched = c.schema != nil || c.Client.Runstate() == protocol.Running
	return c.schema
}

// Reset forgets the schema, for a new connection, which may be to a
// different QEMU.
func (c *Completer) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fetched, c.schema = false, nil
	c.info = hmpInfo{}
}

// Complete returns the candidates for the text before the cursor and how
// many characters of it they replace.
func (c *Completer) Complete(line string) ([]string, int) {
	if strings.HasPrefix(strings.TrimSpace(line), "{") {
		return nil, 0
	}
	if cands, n, ok := c.completeHMP(line); ok {
		return cands, n
	}
	s := c.Schema()
	if s == nil {
		if strings.ContainsAny(line, " \t") {
			return nil, 0
		}
		var out []string
		for _, b := range c.builtins() {
			if strings.HasPrefix(b, line) {
				out = append(out, b)
			}
		}
		return out, len(line)
	}
	return complete(s, line, c.builtins()...)
}
