package shell

import (
	"strings"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

func TestPrintable(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text\n\twith tab", "plain text\n\twith tab"},
		{"Größe ✓ 日本", "Größe ✓ 日本"},
		{"\x1b]0;pwned\a\x1b[2J", `\x1b]0;pwned\a\x1b[2J`},
		{"csi\u009b31m", `csi\u009b31m`},             // C1 CSI, which some terminals obey
		{"bidi\u202eevil", `bidi\u202eevil`},         // reverses what follows on screen
		{"cr\rover", `cr\rover`},                     // would overwrite the line
		{"bad\xffutf8", `bad\xffutf8`},               // not UTF-8
		{"replacement \ufffd", "replacement \ufffd"}, // the rune itself is text
		{"del\x7f", `del\x7f`},
	} {
		if got := Printable(tc.in); got != tc.want {
			t.Errorf("Printable(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// evil is terminal escapes a hostile server puts in its text: retitle
// the window, ring the bell, clear the screen.
const evil = "\x1b]0;pwned\a\x1b[2J"

// hostile is a server whose every string carries evil: the schema's
// names, an event's name, HMP's text, an error's class and description.
func hostile(c *qmptest.Conn) {
	c.Greet()
	schema := []map[string]any{
		{"name": "query-status", "meta-type": "command", "arg-type": "0", "ret-type": "0"},
		{"name": "human-monitor-command", "meta-type": "command", "arg-type": "1", "ret-type": "2"},
		{"name": "evil" + evil, "meta-type": "command", "arg-type": "3", "ret-type": "0"},
		{"name": "0", "meta-type": "object", "members": []any{}},
		{"name": "1", "meta-type": "object", "members": []any{map[string]any{"name": "command-line", "type": "2"}}},
		{"name": "2", "meta-type": "builtin", "json-type": "string"},
		{"name": "3", "meta-type": "object", "members": []any{map[string]any{"name": "arg" + evil, "type": "4"}}},
		{"name": "4", "meta-type": "enum", "values": []any{"val" + evil}},
	}
	c.Answer(func(req *qmptest.Request) bool {
		switch req.Execute {
		case "query-qmp-schema":
			c.Reply(req.ID, schema)
		case "human-monitor-command":
			c.Reply(req.ID, "text"+evil+"\r\n")
		case "query-status":
			c.Event("EV"+evil, nil)
			c.Reply(req.ID, map[string]any{"status": "running" + evil})
		default:
			c.ReplyError(req.ID, "Generic"+evil, "bad"+evil)
		}
		return true
	})
}

// On a terminal the server's text is shown, its escapes spelt out, never
// sent to the terminal: results, events, HMP's text, errors and help.
func TestHostileTextShownNotObeyed(t *testing.T) {
	ed := &scriptEditor{interactive: true, lines: []string{
		"query-status", "hmp info status", "boom", "help evil" + evil,
	}}
	out, errs, err := runShellOn(t, hostile, Config{Format: Format{Pretty: true}}, ed)
	if err != nil {
		t.Fatalf("Run() = %v", err)
	}
	if strings.ContainsAny(out+errs, "\x1b\a") {
		t.Fatalf("a terminal escape reached the terminal:\nout  %q\nerrs %q", out, errs)
	}
	spelt := `\x1b]0;pwned\a\x1b[2J`
	for _, w := range []string{
		"event EV" + spelt + " at ",              // the event's name
		`"running\u001b]0;pwned\u0007\u001b[2J"`, // JSON escapes it itself
		"text" + spelt + "\n",                    // HMP's text
		"evil" + spelt + " (command)",            // help's names
		"arg" + spelt, "val" + spelt,
	} {
		if !strings.Contains(out, w) {
			t.Errorf("output %q lacks %q", out, w)
		}
	}
	if w := "Generic" + spelt + ": bad" + spelt + "\n"; !strings.Contains(errs, w) {
		t.Errorf("errors %q lack %q", errs, w)
	}
}

// Tab never offers a name that would put escapes on the terminal (readline
// echoes what it inserts), nor one that no one could type.
func TestCompletionSkipsUnprintable(t *testing.T) {
	f := completer(func(string) ([]string, int) { return []string{"evil" + evil, "evict"}, 2 })
	got, n := f.Do([]rune("ev"), 2)
	if len(got) != 1 || string(got[0]) != "ict" || n != 2 {
		t.Errorf("Do(ev) = %q, %d; want [ict], 2", got, n)
	}
}

func TestTypable(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"query-status", true}, {"cache.direct=", true}, {"transaction(", true},
		{"evil" + evil, false}, {"two\nlines", false}, {"tab\tdesc", false}, {"a b", false},
		{"bad\xff", false}, {"csi\u009b", false},
	} {
		if got := Typable(tc.s); got != tc.want {
			t.Errorf("Typable(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
}
