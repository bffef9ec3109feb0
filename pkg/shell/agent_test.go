package shell

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/protocol"
	"github.com/qmpsh/qmpsh/pkg/qapi"
	"github.com/qmpsh/qmpsh/pkg/wire"
)

// fakeAgent answers guest-ping, echoes guest-echo's arguments, and says
// CommandNotFound to the rest; its connection never ends.
type fakeAgent struct{ sent []string }

func (a *fakeAgent) Exec(_ context.Context, command string, args any) (json.RawMessage, error) {
	a.sent = append(a.sent, command)
	switch command {
	case "guest-ping":
		return json.RawMessage(`{}`), nil
	case "guest-echo":
		return json.Marshal(args)
	case "guest-shutdown":
		return nil, nil // never replies
	}
	return nil, &wire.ExecuteError{Command: command, Class: "CommandNotFound", Desc: "no " + command}
}

func (a *fakeAgent) Raw(_ context.Context, msg json.RawMessage) (json.RawMessage, error) {
	a.sent = append(a.sent, "raw")
	return json.RawMessage(`{"return":{}}`), nil
}

func (a *fakeAgent) Runstate() protocol.Runstate { return protocol.Running }
func (a *fakeAgent) RunstateChanged() (protocol.Runstate, <-chan struct{}) {
	return protocol.Running, nil
}
func (a *fakeAgent) Err() error { return nil }

// The shell runs on an agent with the same line syntax, without QMP's
// built-ins, and completes the names the agent's Fetch gives.
func TestRunAgent(t *testing.T) {
	agent := &fakeAgent{}
	comp := &Completer{Fetch: func(context.Context) (*qapi.Schema, error) {
		return qapi.FromCommands([]string{"guest-echo", "guest-ping", "guest-shutdown"}), nil
	}, Builtins: []string{"exit", "help", "quit"}}
	var out, errs bytes.Buffer
	lines := "guest-ping\nguest-echo a=1 b=x\nguest-shutdown\n{\"execute\": \"guest-ping\"}\nnope\nhmp info\nhelp\n"
	err := Run(context.Background(), Config{
		Agent: agent, Editor: NewPipeEditor(strings.NewReader(lines), &out), Err: &errs,
		Completer: comp, Help: "agent help\n",
	})
	if !errors.Is(err, ErrCommandFailed) {
		t.Errorf("Run = %v; want ErrCommandFailed", err)
	}
	if want := "{}\n{\"a\":1,\"b\":\"x\"}\n{\"return\":{}}\nagent help\n"; out.String() != want {
		t.Errorf("stdout %q; want %q", out.String(), want)
	}
	if want := "CommandNotFound: no nope\nsyntax error at \"info\": expected key=value\n"; errs.String() != want {
		t.Errorf("stderr %q; want %q", errs.String(), want)
	}
	if want := []string{"guest-ping", "guest-echo", "guest-shutdown", "raw", "nope"}; !slices.Equal(agent.sent, want) {
		t.Errorf("sent %q; want %q", agent.sent, want)
	}
	if c, _ := comp.Complete("guest-p"); !slices.Equal(c, []string{"guest-ping"}) {
		t.Errorf("Complete(guest-p) = %q", c)
	}
	if c, _ := comp.Complete("h"); !slices.Equal(c, []string{"help"}) {
		t.Errorf("Complete(h) = %q; want the agent shell's built-ins only", c)
	}
	if c, _ := comp.Complete("hmp info "); len(c) != 0 {
		t.Errorf("Complete(hmp info ) = %q; an agent has no HMP", c)
	}
}

// On a pipe (JSONOut), an agent shell's help lists its own built-ins as
// one JSON line, without QMP's hmp, sendfd and transaction(.
func TestRunAgentHelpJSON(t *testing.T) {
	comp := &Completer{Fetch: func(context.Context) (*qapi.Schema, error) {
		return qapi.FromCommands([]string{"guest-ping"}), nil
	}, Builtins: []string{"exit", "help", "quit"}}
	var out, errs bytes.Buffer
	err := Run(context.Background(), Config{
		Agent: &fakeAgent{}, Editor: NewPipeEditor(strings.NewReader("help\n"), &out), Err: &errs,
		Completer: comp, Help: "agent help\n", JSONOut: true,
	})
	var list []struct{ Name, Summary string }
	if err != nil || json.Unmarshal(out.Bytes(), &list) != nil || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("Run = %v, stdout %q, stderr %q", err, out.String(), errs.String())
	}
	var names []string
	for _, b := range list {
		names = append(names, b.Name)
	}
	if want := []string{"help", "quit", "exit"}; !slices.Equal(names, want) {
		t.Errorf("help listed %q; want %q", names, want)
	}
	for _, b := range list {
		if strings.Contains(b.Summary, "QEMU") {
			t.Errorf("%s: %q: the agent's shell says nothing of QEMU", b.Name, b.Summary)
		}
	}
	// help NAME on a built-in: its own line.
	out.Reset()
	err = Run(context.Background(), Config{
		Agent: &fakeAgent{}, Editor: NewPipeEditor(strings.NewReader("help quit\n"), &out), Err: &errs,
		Completer: comp, Help: "agent help\n", JSONOut: true,
	})
	if want := `{"name":"quit","summary":"leave the shell"}` + "\n"; err != nil || out.String() != want {
		t.Errorf("help quit: Run = %v, stdout %q, want %q; stderr %q", err, out.String(), want, errs.String())
	}
}

// lostAgent is a fakeAgent whose connection ends under two commands:
// "cut" was sent and its reply never came; "unsent" was never written.
type lostAgent struct{ fakeAgent }

var errPeerClosed = errors.New("connection closed by peer")

func (a *lostAgent) Exec(ctx context.Context, command string, args any) (json.RawMessage, error) {
	switch command {
	case "cut":
		return nil, &wire.DisconnectedError{Cause: errPeerClosed}
	case "unsent":
		return nil, &wire.DisconnectedError{Cause: errPeerClosed, NotSent: true}
	}
	return a.fakeAgent.Exec(ctx, command, args)
}

// A command cut off on an agent names the agent as what may have run
// it, not QEMU; one never written says "not sent".
func TestRunAgentCutOff(t *testing.T) {
	for _, tc := range []struct{ command, want string }{
		{"cut", "connection lost before the reply arrived: connection closed by peer (the guest agent may have run it)\n"},
		{"unsent", "not sent: connection lost\n"},
	} {
		var out, errs bytes.Buffer
		err := Run(context.Background(), Config{
			Agent: &lostAgent{}, Editor: NewPipeEditor(strings.NewReader(tc.command+"\n"), &out), Err: &errs,
			Completer: &Completer{Fetch: func(context.Context) (*qapi.Schema, error) {
				return qapi.FromCommands([]string{"cut", "unsent"}), nil
			}},
		})
		var lost *ConnectionLostError
		if !errors.As(err, &lost) || errs.String() != tc.want {
			t.Errorf("%s: Run = %v, stderr %q; want a ConnectionLostError, stderr %q", tc.command, err, errs.String(), tc.want)
		}
	}
}
