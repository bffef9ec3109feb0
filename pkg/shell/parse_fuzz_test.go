package shell

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/qapi"
)

var lineSeeds = []string{
	"",
	"   ",
	"# comment",
	"query-status",
	"device_add driver=e1000 id=net1",
	`c id="a b" x='y z' w=a\ b`,
	`c a="x\"y\\z" b='x\y'`,
	"c a=-7 b=+1_000 c=18446744073709551615 d=99999999999999999999 e=1.5",
	"c a=true b=FALSE c=null",
	`blockdev-add file={"driver":"file","filename":"/tmp/a b"} file.aio=native`,
	`c a={"x": [1, 2.5, {"y": null}]} b=2`,
	`c a={'k': 'v', 't': True, 'n': None, 'l': [1,],} b=['\x41\u00e9\101']`,
	`c a=[1e999] b={x c=[`,
	"c a.b.c=1 a.b.d=2 a..b=1 .a=1 a.=1",
	"c a=1 a.b=2",
	"c a=1 a=2",
	`{"execute":"query-status","arguments":{}}`,
	`  { "execute" : "x" } trailing`,
	`c a="unterminated`,
	`c a={"unterminated`,
	`c a=x\`,
	"transaction( a x=1 )",
	"transaction( )",
	"transaction( a",
	"x=1",
	`"" a=1`,
	"c \xff=\xfe a=\"\xff\"",
}

func FuzzParseLine(f *testing.F) {
	for _, s := range lineSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		cmd, err := parseLine(line)
		if err != nil {
			var se *qapi.SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("parseLine(%q) error %T %v is not a *qapi.SyntaxError", line, err, err)
			}
			if cmd != nil {
				t.Fatalf("parseLine(%q) returned a command with error %v", line, err)
			}
			if msg := err.Error(); strings.ContainsAny(msg, "\n\r") {
				t.Fatalf("parseLine(%q) error spans several lines: %q", line, msg)
			}
			return
		}
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || trimmed[0] == '#' {
			if cmd != nil {
				t.Fatalf("parseLine(%q) = %#v, want nil for a blank or comment line", line, cmd)
			}
			return
		}
		if cmd == nil {
			t.Fatalf("parseLine(%q) = nil, nil for a non-blank line", line)
		}
		if cmd.Raw != nil {
			if cmd.Name != "" || cmd.Args != nil {
				t.Fatalf("parseLine(%q) set Name or Args with Raw", line)
			}
			var m map[string]any
			if err := json.Unmarshal(cmd.Raw, &m); err != nil || m == nil {
				t.Fatalf("parseLine(%q) Raw %q is not a JSON object: %v", line, cmd.Raw, err)
			}
			return
		}
		if cmd.Name == "" || strings.Contains(cmd.Name, "=") {
			t.Fatalf("parseLine(%q) accepted command name %q", line, cmd.Name)
		}
		if cmd.Args != nil && len(cmd.Args) == 0 {
			t.Fatalf("parseLine(%q) returned empty non-nil Args", line)
		}
		if _, err := json.Marshal(cmd.Args); err != nil {
			t.Fatalf("parseLine(%q): json.Marshal(Args): %v", line, err)
		}
	})
}

func FuzzParseArgs(f *testing.F) {
	for _, s := range lineSeeds {
		// NUL separates tokens, standing in for argv words.
		f.Add(strings.Join(strings.Fields(s), "\x00"))
	}
	f.Add("file={\"driver\": \"file\"}\x00id=a b")
	f.Fuzz(func(t *testing.T, joined string) {
		var tokens []string
		if joined != "" {
			tokens = strings.Split(joined, "\x00")
		}
		args, err := parseArgs(tokens)
		if err != nil {
			var se *qapi.SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("parseArgs(%q) error %T %v is not a *qapi.SyntaxError", tokens, err, err)
			}
			return
		}
		if (args == nil) != (len(tokens) == 0) {
			t.Fatalf("parseArgs(%q) = %#v: nil exactly when there are no tokens", tokens, args)
		}
		if _, err := json.Marshal(args); err != nil {
			t.Fatalf("parseArgs(%q): json.Marshal: %v", tokens, err)
		}
	})
}

func FuzzTransaction(f *testing.F) {
	f.Add("transaction(\nblock-dirty-bitmap-add node=drive0 name=bitmap1\n)")
	f.Add("transaction(\na x=1\nb y=[1,2] )")
	f.Add("transaction( a\n\n# c\ntransaction( b\n) x\n)")
	f.Add("transaction( )\nmore")
	f.Add("transaction(\n{\"type\":\"a\"}\nx=1\n\")\"\n)")
	f.Fuzz(func(t *testing.T, block string) {
		var tr transaction
		closed := false
		for _, line := range strings.Split(block, "\n") {
			done, err := tr.add(line, nil)
			if closed {
				if !done || err == nil {
					t.Fatalf("Add(%q) after the close = %v, %v", line, done, err)
				}
				continue
			}
			if err != nil {
				var se *qapi.SyntaxError
				if !errors.As(err, &se) {
					t.Fatalf("Add(%q) error %T %v is not a *qapi.SyntaxError", line, err, err)
				}
				if done {
					t.Fatalf("Add(%q) closed the block with error %v", line, err)
				}
			}
			closed = done
		}
		cmd := tr.command()
		if (cmd != nil) != closed {
			t.Fatalf("Command() = %#v with closed = %v", cmd, closed)
		}
		if cmd == nil {
			return
		}
		b, err := json.Marshal(cmd.Args)
		if err != nil {
			t.Fatalf("json.Marshal: %v", err)
		}
		var back struct {
			Actions []struct {
				Type string          `json:"type"`
				Data json.RawMessage `json:"data"`
			} `json:"actions"`
		}
		if err := json.Unmarshal(b, &back); err != nil || back.Actions == nil {
			t.Fatalf("transaction marshals as %s: %v", b, err)
		}
		for _, a := range back.Actions {
			if a.Type == "" || len(a.Data) == 0 || a.Data[0] != '{' {
				t.Fatalf("bad action in %s", b)
			}
		}
	})
}
