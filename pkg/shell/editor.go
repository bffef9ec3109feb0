package shell

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/chzyer/readline"
)

// ErrInterrupt is returned by Editor.ReadLine when the user pressed Ctrl-C:
// the line is abandoned and the shell carries on.
var ErrInterrupt = readline.ErrInterrupt

// Editor is the shell's terminal: where it reads lines from, writes to,
// and learns whether a person is there and when they press Ctrl-C. The
// same loop runs on a terminal (readline) and on a pipe (a scanner); tests
// feed it lines and interrupts.
type Editor interface {
	// ReadLine returns the next line without its terminator, io.EOF at
	// the end of input, or ErrInterrupt.
	ReadLine() (string, error)
	// SetPrompt sets the prompt shown before each line.
	SetPrompt(prompt string)
	// Writer is for all output, including output that arrives while a
	// line is being typed: on a terminal it redraws the prompt and the
	// half-typed line beneath what it writes. It is safe for concurrent
	// use.
	Writer() io.Writer
	// Interactive tells whether a person is typing: Ctrl-C then stops
	// waiting for a reply, and a lost connection does not end the loop
	// (the person reads the notice and leaves). Otherwise the loop stops
	// at the first command the lost connection prevents.
	Interactive() bool
	// Interrupts starts delivering the Ctrl-C presses that ReadLine does
	// not see (those while no line is read, e.g. while the shell waits
	// for a reply) on the returned channel, until stop is called.
	// Meanwhile Ctrl-C does not end the process. An editor without a
	// person behind it returns a nil channel.
	Interrupts() (c <-chan os.Signal, stop func())
	Close() error
}

// InterruptSource is where an interactive editor's interrupts come from:
// it subscribes c until stop is called. The command line passes one
// built on os/signal, since between lines the terminal is not in raw
// mode and Ctrl-C is SIGINT, not a key; this package installs no signal
// handlers of its own.
type InterruptSource func(c chan<- os.Signal) (stop func())

// TerminalConfig configures NewTerminalEditor.
type TerminalConfig struct {
	Stdin  io.ReadCloser
	Stdout io.Writer // the terminal: prompt, echo, and results unless Results is set
	// Results, if set, is where the shell writes results and events
	// instead of Stdout: standard output that is not a terminal (qmpsh
	// connect > out.json typed at a terminal), which must get results
	// only, while the prompt and echo go to the terminal, Stdout.
	Results     io.Writer
	HistoryFile string // "" for no persisted history
	Complete    func(line string) (candidates []string, replaceLen int)
	// Interrupts is where Ctrl-C pressed outside ReadLine comes from;
	// nil for nowhere.
	Interrupts InterruptSource
}

// NewTerminalEditor returns a readline editor: line editing, history
// (persisted, with Ctrl-R search), and Tab completion.
func NewTerminalEditor(cfg TerminalConfig) (Editor, error) {
	rc := &readline.Config{
		Prompt:            "(QEMU) ",
		HistoryFile:       cfg.HistoryFile,
		HistorySearchFold: true,
		// ReadLine saves what KeepInHistory allows.
		DisableAutoSaveHistory: true,
		InterruptPrompt:        "^C",
		Stdin:                  cfg.Stdin,
		Stdout:                 cfg.Stdout,
		Stderr:                 cfg.Stdout,
	}
	if cfg.Complete != nil {
		rc.AutoComplete = completer(cfg.Complete)
	}
	if cfg.HistoryFile != "" {
		// The history holds what was typed at a VM: keep it private.
		// readline creates the file with mode 0666 less the umask, and
		// rewrites it so when trimming it, so it is made 0600 before
		// and after readline opens it.
		os.MkdirAll(filepath.Dir(cfg.HistoryFile), 0o700)
		if f, err := os.OpenFile(cfg.HistoryFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err == nil {
			f.Close()
		}
		os.Chmod(cfg.HistoryFile, 0o600)
	}
	rl, err := readline.NewEx(rc)
	if err != nil {
		return nil, err
	}
	if cfg.HistoryFile != "" {
		os.Chmod(cfg.HistoryFile, 0o600)
	}
	return &terminalEditor{rl: rl, results: cfg.Results, interrupts: cfg.Interrupts}, nil
}

type terminalEditor struct {
	rl         *readline.Instance
	results    io.Writer // TerminalConfig.Results
	interrupts InterruptSource
	// reading is set while ReadLine runs. readline's own notion lags:
	// it still believes it reads for a moment after returning a line.
	reading atomic.Bool
}

func (e *terminalEditor) ReadLine() (string, error) {
	e.reading.Store(true)
	line, err := e.rl.Readline()
	e.reading.Store(false)
	if err == nil && KeepInHistory(line) {
		e.rl.SaveHistory(line)
	}
	return line, err
}

// SetPrompt also redraws the line being edited, for a prompt set from
// another goroutine (the connection's state) while a line is read.
// Between lines it only sets the prompt for the next one: a prompt drawn
// then would come before the output of the line just entered (a
// transaction's result after a closing ")" that changed the prompt).
func (e *terminalEditor) SetPrompt(p string) {
	e.rl.SetPrompt(p)
	if e.reading.Load() {
		e.rl.Refresh()
	}
}

// Terminal is where the editor draws, for messages beside the results
// (errors, notices, -v traffic): what is written there has the line
// being typed drawn again beneath it. It is Writer unless results go
// elsewhere (TerminalConfig.Results).
func (e *terminalEditor) Terminal() io.Writer { return e.rl.Stdout() }

func (e *terminalEditor) Writer() io.Writer {
	if e.results != nil {
		return e.results
	}
	return e.rl.Stdout()
}

// Clean erases the prompt and the line being edited from the screen, for
// a session that ends without the user ending the line (the program's
// own exit, QEMU's death), so that what is printed next starts a line of
// its own. It is for when the shell no longer reads or writes.
func (e *terminalEditor) Clean() { e.rl.Clean() }

func (e *terminalEditor) Interactive() bool { return true }
func (e *terminalEditor) Close() error      { return e.rl.Close() }

func (e *terminalEditor) Interrupts() (<-chan os.Signal, func()) {
	if e.interrupts == nil {
		return nil, func() {}
	}
	c := make(chan os.Signal, 1)
	return c, e.interrupts(c)
}

// completer adapts a function on the text before the cursor to readline's
// interface, which wants the suffixes to insert.
type completer func(line string) ([]string, int)

func (f completer) Do(line []rune, pos int) ([][]rune, int) {
	cands, n := f(string(line[:pos]))
	out := make([][]rune, 0, len(cands))
	for _, c := range cands {
		if !Typable(c) {
			// A name from a hostile schema: readline would echo its
			// escape sequences to the terminal, and no one types it.
			continue
		}
		r := []rune(c)
		if len(r) >= n {
			out = append(out, r[n:])
		}
	}
	return out, n
}

// NewPipeEditor returns an editor for input that is not a terminal: no
// prompt, no editing, each line as it comes. A line longer than
// MaxPipeLine is skipped, with a *LineTooLongError.
func NewPipeEditor(in io.Reader, out io.Writer) Editor {
	return &pipeEditor{r: bufio.NewReaderSize(in, 64<<10), w: &lockedWriter{w: out}}
}

// MaxPipeLine bounds a line read from a pipe, so that input without
// newlines cannot take all memory. QEMU's own limits on a request are
// of the same order.
const MaxPipeLine = 16 << 20

// LineTooLongError is a line of input longer than MaxPipeLine: it was
// skipped, and the lines after it are read as usual.
type LineTooLongError struct {
	Line int // 1 for the first line of input
}

func (e *LineTooLongError) Error() string {
	return fmt.Sprintf("input line %d is longer than %d MiB, the most the shell reads: skipped, nothing sent", e.Line, MaxPipeLine>>20)
}

type pipeEditor struct {
	r    *bufio.Reader
	w    *lockedWriter
	line int // lines read so far
}

func (e *pipeEditor) ReadLine() (string, error) {
	var line []byte
	tooLong := false
	for {
		chunk, err := e.r.ReadSlice('\n')
		if len(line)+len(chunk) > MaxPipeLine+1 { // +1: the newline
			tooLong, line = true, nil // read on to the line's end
		} else if !tooLong {
			line = append(line, chunk...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF && (len(line) > 0 || tooLong) {
			break // a last line without a newline
		}
		if err != nil {
			return "", err
		}
		break
	}
	e.line++
	if tooLong {
		return "", &LineTooLongError{Line: e.line}
	}
	// As bufio.ScanLines: without the newline and a carriage return.
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	return string(line), nil
}

func (e *pipeEditor) SetPrompt(string)                       {}
func (e *pipeEditor) Writer() io.Writer                      { return e.w }
func (e *pipeEditor) Interactive() bool                      { return false }
func (e *pipeEditor) Interrupts() (<-chan os.Signal, func()) { return nil, func() {} }
func (e *pipeEditor) Close() error                           { return nil }

// lockedWriter serializes writes, so an event printed by the background
// goroutine never lands inside a result.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// DefaultHistoryFile is $XDG_STATE_HOME/qmpsh/history, or
// ~/.local/state/qmpsh/history, or "" when neither can be found. getenv
// reads the environment.
func DefaultHistoryFile(getenv func(string) string) string {
	if d := getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "qmpsh", "history")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".local", "state", "qmpsh", "history")
}
