package shell

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/qmpsh/qmpsh/pkg/qapi"
	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

func TestMain(m *testing.M) {
	// readline watches SIGWINCH from its first editor to the end of the
	// process, by design: not a leak of ours.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/chzyer/readline.DefaultOnWidthChanged.func1.1"))
}

// scriptEditor feeds lines to the shell and records its output. A line
// "^C" stands for Ctrl-C at the prompt; Ctrl-C outside ReadLine is sent
// on interrupts. An interactive one counts the lines read while the shell
// was not subscribed to its interrupts.
type scriptEditor struct {
	lines   []string
	out     qmptest.Buffer
	prompts []string

	interactive  bool
	interrupts   chan os.Signal
	subscribed   bool
	unsubscribed int // lines read while not subscribed
}

func (e *scriptEditor) ReadLine() (string, error) {
	if e.interactive && !e.subscribed {
		e.unsubscribed++
	}
	if len(e.lines) == 0 {
		return "", io.EOF
	}
	l := e.lines[0]
	e.lines = e.lines[1:]
	if l == "^C" {
		return "", ErrInterrupt
	}
	return l, nil
}

func (e *scriptEditor) SetPrompt(p string) { e.prompts = append(e.prompts, p) }
func (e *scriptEditor) Writer() io.Writer  { return &e.out }
func (e *scriptEditor) Close() error       { return nil }
func (e *scriptEditor) Interactive() bool  { return e.interactive }

func (e *scriptEditor) Interrupts() (<-chan os.Signal, func()) {
	if !e.interactive {
		return nil, func() {}
	}
	e.subscribed = true
	return e.interrupts, func() { e.subscribed = false }
}

// runShell runs lines against a fake server and returns the output,
// errors and Run's result.
func runShell(t *testing.T, handler func(*qmptest.Conn), cfg Config, lines ...string) (out, errs string, err error) {
	t.Helper()
	return runShellOn(t, handler, cfg, &scriptEditor{lines: lines})
}

// runShellOn is runShell with an editor of the test's own.
func runShellOn(t *testing.T, handler func(*qmptest.Conn), cfg Config, ed *scriptEditor) (out, errs string, err error) {
	t.Helper()
	c, ctx := connectFake(t, handler)
	var errBuf qmptest.Buffer
	cfg.Client, cfg.Editor, cfg.Err = c, ed, &errBuf
	err = Run(ctx, cfg)
	return ed.out.String(), errBuf.String(), err
}

// connectFake connects a client to a fake server that runs handler; both
// go at the end of the test, as does the context, which bounds it.
func connectFake(t *testing.T, handler func(*qmptest.Conn)) (*qmp.Client, context.Context) {
	t.Helper()
	s := qmptest.NewServer(handler)
	t.Cleanup(s.Close)
	c := qmp.NewClient()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	if err := c.Connect(ctx, s.Addr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Disconnect() })
	return c, ctx
}

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name         string
		cfg          Config
		lines        []string
		out, errs    string
		err          error
		outContains  []string
		errsContains []string
	}{
		{name: "Result", lines: []string{"echo a=1 b=x"}, out: "{\"a\":1,\"b\":\"x\"}\n"},
		{name: "Pretty", cfg: Config{Format: Format{Pretty: true}}, lines: []string{"echo a=1"}, out: "{ \"a\": 1 }\n"},
		{name: "RawLineGetsWholeReplyWithItsID", lines: []string{`{"execute": "echo", "arguments": {"x": 1}, "id": "mine"}`},
			out: "{\"id\":\"mine\",\"return\":{\"x\":1}}\n"},
		{name: "EventBeforeResult", lines: []string{"stop"},
			outContains: []string{"\"event\":\"STOP\"", "}\n{}\n"}},
		{name: "ErrorReply", lines: []string{"nope", "echo"}, out: "{}\n",
			errs: "CommandNotFound: The command nope has not been found\n", err: ErrCommandFailed},
		{name: "SyntaxError", lines: []string{"echo a"}, errs: "syntax error at \"a\": expected key=value\n", err: ErrCommandFailed},
		{name: "BlankAndComment", lines: []string{"", "   ", "# nothing"}},
		{name: "QuitStopsReading", lines: []string{"echo", "quit", "echo never=1"}, out: "{}\n"},
		{name: "Exit", lines: []string{"exit", "echo never=1"}},
		// The fake server has no query-qmp-schema: help degrades to the
		// names from query-commands.
		{name: "HelpWithNamesOnly", lines: []string{"help STOP"},
			errs: "unknown command or event \"STOP\" (did you mean \"stop\"?)\n", err: ErrCommandFailed},
		{name: "Help", lines: []string{"help"}, outContains: []string{"Built-in commands", "hmp COMMAND-LINE", "transaction("}},
		// help NAME on a built-in, which is no QMP command.
		{name: "HelpOnBuiltins", lines: []string{"help sendfd", "help hmp", "help transaction", "help exit"},
			outContains: []string{"Built-in command (not sent to QEMU):\n  sendfd PATH fdname=NAME", "\n  hmp COMMAND-LINE",
				"\n  transaction(   ", "\n  quit, exit, Ctrl-D    leave the shell; QEMU keeps running"}},
		// quit is both QMP's command and the shell's word: help says
		// which it shows.
		{name: "HelpQuitSaysWhich", lines: []string{"help quit"},
			outContains: []string{"QMP's quit, sent as {\"execute\": \"quit\"} (typed as a word, quit leaves the shell):\n"}},
		{name: "HelpOnBuiltinJSON", cfg: Config{JSONOut: true}, lines: []string{"help sendfd"},
			out: `{"name":"sendfd","summary":"open a local file and pass it to QEMU with getfd or add-fd"}` + "\n"},
		{name: "Transaction", lines: []string{"transaction(", "echo-action a=1", ")"},
			out: "{\"actions\":[{\"data\":{\"a\":1},\"type\":\"echo-action\"}]}\n"},
		{name: "TransactionAbandonedByCtrlC", lines: []string{"transaction(", "x a=1", "^C", "echo"},
			out: "{}\n", errs: "transaction abandoned\n"},
		// Input that ends inside a block is a failure, not silence.
		{name: "TransactionNotClosedAtEOF", lines: []string{"transaction(", "echo-action a=1"},
			errs: "transaction( not closed with \")\" before the end of input: its actions were not sent; end the block with a line \")\"\n",
			err:  ErrCommandFailed},
		{name: "TransactionNested", lines: []string{"transaction(", "transaction(", "echo-action a=1", ")"},
			out:  "{\"actions\":[{\"data\":{\"a\":1},\"type\":\"echo-action\"}]}\n",
			errs: "syntax error at \"transaction(\": a transaction block is already open and blocks do not nest: end it with \")\" first\n",
			err:  ErrCommandFailed},
		{name: "HMPWithoutCommand", lines: []string{"hmp"},
			errs: "hmp: expected a human monitor command, e.g. hmp info status\n", err: ErrCommandFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			handler := qmptest.Standard
			if tc.name == "Transaction" || tc.name == "TransactionNested" {
				// The fake has no transaction command: echo what was sent.
				handler = func(c *qmptest.Conn) {
					c.Greet()
					for {
						req, err := c.ReadRequest()
						if err != nil {
							return
						}
						if req.Arguments == nil {
							// query-qmp-schema...: answered, or the
							// shell waits its schema fetch's 5s out.
							c.ReplyError(req.ID, "CommandNotFound", "The command "+req.Command()+" has not been found")
							continue
						}
						c.Reply(req.ID, req.Arguments)
					}
				}
			}
			out, errs, err := runShell(t, handler, tc.cfg, tc.lines...)
			if !errors.Is(err, tc.err) || (err != nil && tc.err == nil) {
				t.Errorf("Run() = %v, want %v", err, tc.err)
			}
			if tc.outContains == nil && out != tc.out {
				t.Errorf("output %q\nwant   %q", out, tc.out)
			}
			for _, s := range tc.outContains {
				if !strings.Contains(out, s) {
					t.Errorf("output %q lacks %q", out, s)
				}
			}
			if errs != tc.errs {
				t.Errorf("errors %q\nwant   %q", errs, tc.errs)
			}
		})
	}
}

func TestRunConnectionLost(t *testing.T) {
	handler := func(c *qmptest.Conn) {
		c.Greet()
		for i := 0; ; i++ {
			req, err := c.ReadRequest()
			if err != nil {
				return
			}
			if i == 1 { // answer negotiation and one command, then hang up
				c.Close()
				return
			}
			c.Reply(req.ID, nil)
		}
	}
	t.Run("Piped", func(t *testing.T) {
		_, errs, err := runShell(t, handler, Config{}, "echo", "echo", "echo")
		var lost *ConnectionLostError
		if !errors.As(err, &lost) || err.Error() != "connection lost: connection closed by peer" {
			t.Fatalf("Run() = %v", err)
		}
		if errs != "not sent: connection lost: connection closed by peer\n" {
			t.Errorf("errors %q: want one refusal, then the loop stops", errs)
		}
	})
	t.Run("InteractiveRefusesButStays", func(t *testing.T) {
		ed := &scriptEditor{lines: []string{"echo", "echo", "echo", "echo"}, interactive: true}
		_, errs, err := runShellOn(t, handler, Config{}, ed)
		var lost *ConnectionLostError
		if !errors.As(err, &lost) {
			t.Fatalf("Run() = %v", err)
		}
		if n := strings.Count(errs, "not sent: connection lost"); n != 4 {
			t.Errorf("%d refusals, want 4 (the one the drop caught, and every one after): %q", n, errs)
		}
		if !strings.Contains("\n"+errs, "\nconnection lost: connection closed by peer\n") {
			t.Errorf("the drop was not announced: %q", errs)
		}
	})
}

// A command the connection's loss cuts off was sent: the shell must not
// say "not sent", for QEMU may have run it.
func TestRunCommandCutOff(t *testing.T) {
	handler := func(c *qmptest.Conn) {
		c.Greet()
		if req, err := c.ReadRequest(); err == nil {
			c.Reply(req.ID, nil) // qmp_capabilities
		}
		c.ReadRequest() // the command, read whole, never answered
		c.Close()
	}
	_, errs, err := runShell(t, handler, Config{}, `{"execute": "stop"}`, "echo")
	var lost *ConnectionLostError
	if !errors.As(err, &lost) {
		t.Fatalf("Run() = %v", err)
	}
	if want := "connection lost before the reply arrived: connection closed by peer (QEMU may have run it)\n"; errs != want {
		t.Errorf("errors %q\nwant   %q", errs, want)
	}
}

// Ctrl-C while the shell waits for a reply stops the wait, not the shell:
// it says so and runs the next line. (The pty test does the same with a
// real SIGINT.)
func TestCtrlCDuringCommand(t *testing.T) {
	waiting := make(chan struct{})
	handler := func(c *qmptest.Conn) {
		c.Greet()
		for {
			req, err := c.ReadRequest()
			if err != nil {
				return
			}
			if req.Command() == "slow" {
				close(waiting) // and never answer
				continue
			}
			c.Reply(req.ID, req.Arguments)
		}
	}
	ed := &scriptEditor{lines: []string{"slow", "echo a=1"}, interactive: true, interrupts: make(chan os.Signal, 1)}
	ended := make(chan struct{})
	defer close(ended)
	go func() {
		select {
		case <-waiting:
			ed.interrupts <- os.Interrupt
		case <-ended:
		}
	}()
	out, errs, err := runShellOn(t, handler, Config{}, ed)
	if err != nil {
		t.Errorf("Run() = %v, want nil: an interrupted wait is not a failure", err)
	}
	if want := "{\"a\":1}\n"; out != want {
		t.Errorf("output %q\nwant   %q", out, want)
	}
	// A blank line first: on a terminal the ^C echoed is on the line.
	if want := "\ninterrupted: stopped waiting for the reply\n"; errs != want {
		t.Errorf("errors %q, want the notice %q", errs, want)
	}
	if ed.unsubscribed != 0 || ed.subscribed {
		t.Errorf("%d lines read without the editor's interrupts taken, still subscribed after Run: %v; "+
			"want them taken for the whole session", ed.unsubscribed, ed.subscribed)
	}
}

func TestPrompt(t *testing.T) {
	s := qmptest.NewServer(qmptest.Standard)
	defer s.Close()
	c := qmp.NewClient()
	if err := c.Connect(context.Background(), s.Addr); err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	ed := &scriptEditor{lines: []string{"transaction(", ")"}}
	Run(context.Background(), Config{Client: c, Editor: ed, HMP: false})
	want := []string{"(QEMU) ", "transaction> ", "(QEMU) "}
	if strings.Join(ed.prompts, "|") != strings.Join(want, "|") {
		t.Errorf("prompts %q, want %q", ed.prompts, want)
	}
	ed = &scriptEditor{}
	Run(context.Background(), Config{Client: c, Editor: ed, HMP: true})
	if len(ed.prompts) == 0 || ed.prompts[0] != "(HMP) " {
		t.Errorf("HMP prompt %q", ed.prompts)
	}
}

func TestCompleter(t *testing.T) {
	s := qmptest.NewServer(qmptest.Standard)
	defer s.Close()
	c := qmp.NewClient()
	if err := c.Connect(context.Background(), s.Addr); err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	comp := &Completer{Client: c}
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"query-st", []string{"query-status"}},
		{"qu", []string{"query-commands", "query-status", "quit"}},
		{"he", []string{"help"}},
		{"echo ", nil},
		{"{", nil},
	} {
		got, n := comp.Complete(tc.line)
		if strings.Join(got, ",") != strings.Join(tc.want, ",") || (got != nil && n != len(tc.line)) {
			t.Errorf("Complete(%q) = %q, %d; want %q", tc.line, got, n, tc.want)
		}
	}
}

// The history file's place comes from the environment the caller hands
// over, not the process's.
func TestDefaultHistoryFile(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/not/this")
	home := t.TempDir()
	t.Setenv("HOME", home)
	for _, tc := range []struct{ state, want string }{
		{"/state", "/state/qmpsh/history"},
		{"", filepath.Join(home, ".local", "state", "qmpsh", "history")},
		{"relative", filepath.Join(home, ".local", "state", "qmpsh", "history")},
	} {
		env := map[string]string{"XDG_STATE_HOME": tc.state}
		if got := DefaultHistoryFile(func(k string) string { return env[k] }); got != tc.want {
			t.Errorf("XDG_STATE_HOME=%q: %q, want %q", tc.state, got, tc.want)
		}
	}
}

// TestRunFloodBeforeReply: every event that came before a reply is
// printed before it, even a flood that overfills the printer's Listener,
// whose delivery goroutine is then handing events over as the printer
// empties it.
func TestRunFloodBeforeReply(t *testing.T) {
	const n = 3000
	out, errs, err := runShell(t, qmptest.Standard, Config{}, "emit name=FLOOD count=3000", "echo a=1")
	if err != nil || errs != "" {
		t.Fatalf("Run() = %v, errors %q", err, errs)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != n+2 {
		t.Fatalf("output has %d lines, want %d events and 2 replies", len(lines), n)
	}
	for i, l := range lines[:n] {
		if !strings.Contains(l, `"event":"FLOOD"`) {
			t.Fatalf("line %d = %q, want a FLOOD event", i, l)
		}
	}
	if lines[n] != "{}" || lines[n+1] != `{"a":1}` {
		t.Errorf("replies = %q, %q; want {} then {\"a\":1}", lines[n], lines[n+1])
	}
}

// A person at a terminal read each error as it came: the session's
// status does not repeat them, as a script's does.
func TestRunInteractiveFailureIsNoStatus(t *testing.T) {
	ed := &scriptEditor{lines: []string{"nope", "echo a"}, interactive: true}
	_, errs, err := runShellOn(t, qmptest.Standard, Config{}, ed)
	if err != nil {
		t.Errorf("Run() = %v, want nil", err)
	}
	if !strings.Contains(errs, "CommandNotFound") || !strings.Contains(errs, "syntax error") {
		t.Errorf("errors %q: want both failures reported", errs)
	}
}

// echoArguments is a server without a schema (it knows no
// query-qmp-schema) that answers each command with its arguments.
func echoArguments(c *qmptest.Conn) {
	c.Greet()
	for {
		req, err := c.ReadRequest()
		if err != nil {
			return
		}
		if req.Arguments == nil { // query-qmp-schema, query-commands
			c.ReplyError(req.ID, "CommandNotFound", "no "+req.Execute)
			continue
		}
		c.Reply(req.ID, req.Arguments)
	}
}

// A rejected line of a transaction block: a person types it again and
// the block goes on; a script cannot, so its block sends nothing.
func TestTransactionRejectedLine(t *testing.T) {
	lines := []string{"transaction(", "echo-action a=1", "echo-action a", "echo-action a=2", ")", "after b=1"}
	const syntaxErr = "syntax error at \"a\": expected key=value\n"

	out, errs, err := runShellOn(t, echoArguments, Config{}, &scriptEditor{interactive: true, lines: lines})
	want := `{"actions":[{"data":{"a":1},"type":"echo-action"},{"data":{"a":2},"type":"echo-action"}]}` + "\n{\"b\":1}\n"
	if err != nil || out != want || errs != syntaxErr {
		t.Errorf("on a terminal: Run() = %v, output %q, errors %q; want nil, %q, %q", err, out, errs, want, syntaxErr)
	}

	out, errs, err = runShellOn(t, echoArguments, Config{}, &scriptEditor{lines: lines})
	if want := syntaxErr + ErrRejectedTransaction.Error() + "\n"; !errors.Is(err, ErrCommandFailed) || out != "{\"b\":1}\n" || errs != want {
		t.Errorf("on a pipe: Run() = %v, output %q, errors %q; want %v, %q, %q", err, out, errs, ErrCommandFailed, "{\"b\":1}\n", want)
	}
}

// A line "transaction(" inside a block is rejected but drops no action:
// on a pipe the block still runs. One with an action on it drops that
// action: the block sends nothing.
func TestTransactionNestedOnPipe(t *testing.T) {
	out, _, _ := runShell(t, echoArguments, Config{}, "transaction(", "a x=1", "transaction(", ")")
	if want := `{"actions":[{"data":{"x":1},"type":"a"}]}` + "\n"; out != want {
		t.Errorf("lone nested transaction(: output %q, want %q", out, want)
	}
	out, errs, _ := runShell(t, echoArguments, Config{}, "transaction(", "a x=1", "transaction( b y=2", ")")
	if out != "" || !strings.HasSuffix(errs, ErrRejectedTransaction.Error()+"\n") {
		t.Errorf("nested transaction( with an action: output %q, errors %q; want nothing sent", out, errs)
	}
}

// While help's pager has the terminal, the printer holds the events that
// arrive, rather than draw them over the pager's screen; they are printed
// once the pager is done. The pager here makes QEMU's stand-in emit an
// event, then gives a printer that did not wait the time to print it.
func TestNoEventsOverThePager(t *testing.T) {
	c, ctx := connectFake(t, qmptest.Standard)
	ed := &scriptEditor{interactive: true, lines: []string{"help query-status"}}
	schema := testSchema(t)
	paged := false
	cfg := Config{
		Client: c, Editor: ed, Err: io.Discard,
		Completer: &Completer{Fetch: func(context.Context) (*qapi.Schema, error) { return schema, nil }},
		Page: func(string) bool {
			paged = true
			if _, err := c.Execute(ctx, "emit", map[string]any{"name": "PAGED"}); err != nil {
				t.Error(err)
			}
			// The event has reached the listeners (it came before the
			// reply): a printer that did not wait prints it now.
			wctx, wcancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer wcancel()
			ed.out.Wait(wctx, "PAGED", 1)
			io.WriteString(&ed.out, "PAGER DONE\n")
			return true
		},
	}
	if err := Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	out := ed.out.String()
	if !paged || !strings.HasPrefix(out, "PAGER DONE\n") || !strings.Contains(out, "PAGED") {
		t.Errorf("output %q: want the pager's, then the event", out)
	}
}

// Only a bare HMP quit that said nothing makes the shell wait for QEMU to
// hang up: HMP answers its own errors with text.
func TestHMPQuit(t *testing.T) {
	for _, tc := range []struct {
		line, ret string
		want      bool
	}{
		{"quit", `""`, true},
		{" q ", `""`, true},
		{"quit now", `"quit|q: extraneous characters at the end of line\r\n"`, false},
		{"quit", `"some error\r\n"`, false},
		{"quitx", `""`, false},
		{"info status", `""`, false},
	} {
		if got := hmpQuit(tc.line, json.RawMessage(tc.ret)); got != tc.want {
			t.Errorf("hmpQuit(%q, %s) = %v, want %v", tc.line, tc.ret, got, tc.want)
		}
	}
}
