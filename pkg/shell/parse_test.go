package shell

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/qapi"
	"github.com/qmpsh/qmpsh/pkg/qmp"
)

type obj = map[string]any

// parseLine parses one line on its own and types it by guessing; a
// transaction block must close on the same line.
func parseLine(line string) (*Command, error) { return parseTyped(nil, line) }

// parseTyped is parseLine with the values typed and checked by s, and a
// command s does not know an error (as Schema.Build has it).
func parseTyped(s *qapi.Schema, line string) (*Command, error) {
	p := Parser{Schema: func() *qapi.Schema { return s }}
	in, err := p.Parse(line)
	switch {
	case err != nil:
		return nil, err
	case p.InBlock():
		return nil, &qapi.SyntaxError{Token: transactionOpen, Msg: `transaction block is not closed by ")" on this line`}
	case in == nil:
		return nil, nil
	case in.Raw == nil && in.tx == nil:
		args, err := s.Build(in.Name, in.Args)
		if err != nil {
			return nil, err
		}
		return &Command{Name: in.Name, Args: args}, nil
	}
	return in.Command(s)
}

// parseArgs parses already split key=value words, as exec's arguments
// after the command name, and types them by guessing.
func parseArgs(tokens []string) (map[string]any, error) {
	return parseTypedArgs(nil, "c", tokens)
}

// parseTypedArgs is parseArgs for command name, typed by s.
func parseTypedArgs(s *qapi.Schema, name string, tokens []string) (map[string]any, error) {
	in, err := ParseArgs(append([]string{name}, tokens...))
	if err != nil {
		return nil, err
	}
	cmd, err := in.Command(s)
	if err != nil {
		return nil, err
	}
	return cmd.Args, nil
}

func TestParseLine(t *testing.T) {
	tests := []struct {
		name string
		line string
		want *Command
		err  string // exact Error() of the *qapi.SyntaxError; "" for success
	}{
		// Lines the REPL skips.
		{name: "empty", line: ""},
		{name: "blanks", line: " \t \r\n"},
		{name: "comment", line: "# query-status"},
		{name: "indented comment", line: "   #x=1"},
		{name: "bare hash", line: "#"},

		// Command names.
		{name: "name only", line: "query-status", want: &Command{Name: "query-status"}},
		{name: "surrounding blanks", line: "\t query-status  ", want: &Command{Name: "query-status"}},
		{name: "quoted name", line: `"query-status"`, want: &Command{Name: "query-status"}},
		{name: "name with key=value", line: "id=1", err: `syntax error at "id=1": expected a command name`},
		{name: "empty quoted name", line: `"" a=1`, err: `syntax error at "": expected a command name`},
		{name: "closing paren outside a block is a name", line: ")", want: &Command{Name: ")"}},

		// Splitting into key=value.
		{name: "strings", line: "device_add driver=e1000 id=net1",
			want: &Command{Name: "device_add", Args: obj{"driver": "e1000", "id": "net1"}}},
		{name: "split at first equals", line: "c a=b=c", want: &Command{Name: "c", Args: obj{"a": "b=c"}}},
		{name: "empty value", line: "c a=", want: &Command{Name: "c", Args: obj{"a": ""}}},
		{name: "no equals", line: "c a=1 foo", err: `syntax error at "foo": expected key=value`},
		{name: "empty key", line: "c =1", err: `syntax error at "=1": expected key=value, the key before "=" is empty`},
		{name: "hash inside a line is a word", line: "c a=1 # note", err: `syntax error at "#": expected key=value`},

		// Quoting, as shlex.split.
		{name: "double quotes", line: `c id="a b"`, want: &Command{Name: "c", Args: obj{"id": "a b"}}},
		{name: "single quotes", line: `c id='a b'`, want: &Command{Name: "c", Args: obj{"id": "a b"}}},
		{name: "quoted whole word", line: `c "id=a b"`, want: &Command{Name: "c", Args: obj{"id": "a b"}}},
		{name: "quoted key", line: `c "a b"=1`, want: &Command{Name: "c", Args: obj{"a b": int64(1)}}},
		{name: "adjacent quotes", line: `c a=x"y z"'w'`, want: &Command{Name: "c", Args: obj{"a": "xy zw"}}},
		{name: "escaped double quote", line: `c a="x\"y\\z"`, want: &Command{Name: "c", Args: obj{"a": `x"y\z`}}},
		{name: "other backslash in double quotes kept", line: `c a="x\qy"`, want: &Command{Name: "c", Args: obj{"a": `x\qy`}}},
		{name: "no escapes in single quotes", line: `c a='x\y'`, want: &Command{Name: "c", Args: obj{"a": `x\y`}}},
		{name: "escaped blank", line: `c a=x\ y`, want: &Command{Name: "c", Args: obj{"a": "x y"}}},
		{name: "empty quoted value", line: `c a=""`, want: &Command{Name: "c", Args: obj{"a": ""}}},
		{name: "empty quoted word", line: `c ""`, err: `syntax error at "": expected key=value`},
		{name: "quotes do not change the type", line: `c a="123" b='true'`,
			want: &Command{Name: "c", Args: obj{"a": int64(123), "b": true}}},
		{name: "unterminated double quote", line: `c a="x y`, err: `syntax error at "a=\"x y": unterminated quote`},
		{name: "unterminated single quote", line: `c a=1 b='x`, err: `syntax error at "b='x": unterminated quote`},
		{name: "unterminated after escaped quote", line: `c a="x\"`, err: `syntax error at "a=\"x\\\"": unterminated quote`},
		{name: "trailing backslash", line: `c a=x\`, err: `syntax error at "a=x\\": backslash at end of line`},
		{name: "unterminated quote in name", line: `"query`, err: `syntax error at "\"query": unterminated quote`},

		// Integers, as Python's int().
		{name: "integer", line: "c a=42", want: &Command{Name: "c", Args: obj{"a": int64(42)}}},
		{name: "negative integer", line: "c a=-7", want: &Command{Name: "c", Args: obj{"a": int64(-7)}}},
		{name: "plus sign", line: "c a=+7", want: &Command{Name: "c", Args: obj{"a": int64(7)}}},
		{name: "leading zeros", line: "c a=007", want: &Command{Name: "c", Args: obj{"a": int64(7)}}},
		{name: "underscores", line: "c a=1_000_000", want: &Command{Name: "c", Args: obj{"a": int64(1000000)}}},
		{name: "int64 bounds", line: "c a=9223372036854775807 b=-9223372036854775808",
			want: &Command{Name: "c", Args: obj{"a": int64(9223372036854775807), "b": int64(-9223372036854775808)}}},
		{name: "uint64 range", line: "c a=18446744073709551615",
			want: &Command{Name: "c", Args: obj{"a": uint64(18446744073709551615)}}},
		{name: "too large", line: "c size=18446744073709551616",
			err: `syntax error at "size": integer 18446744073709551616 is out of range`},
		{name: "too small", line: "c a=-9223372036854775809",
			err: `syntax error at "a": integer -9223372036854775809 is out of range`},
		{name: "not integers", line: "c a=- b=1.5 c=1e3 d=0x10 e=1__0 f=_1 g=1_ h=+-1 i=1-",
			want: &Command{Name: "c", Args: obj{"a": "-", "b": "1.5", "c": "1e3", "d": "0x10",
				"e": "1__0", "f": "_1", "g": "1_", "h": "+-1", "i": "1-"}}},

		// Booleans; null stays a string as in qmp-shell.
		{name: "booleans", line: "c a=true b=false c=TRUE d=False",
			want: &Command{Name: "c", Args: obj{"a": true, "b": false, "c": true, "d": false}}},
		{name: "not booleans", line: "c a=null b=yes c=truex",
			want: &Command{Name: "c", Args: obj{"a": "null", "b": "yes", "c": "truex"}}},

		// JSON and Python literal values.
		{name: "json object", line: `blockdev-add file={"driver":"file","filename":"/tmp/a b"}`,
			want: &Command{Name: "blockdev-add", Args: obj{"file": obj{"driver": "file", "filename": "/tmp/a b"}}}},
		{name: "json array", line: `c a=[1,-2,"x",true,null,1.5,[]]`,
			want: &Command{Name: "c", Args: obj{"a": []any{int64(1), int64(-2), "x", true, nil, 1.5, []any{}}}}},
		{name: "json big integers exact", line: `c a=[9007199254740993,18446744073709551615,1e3]`,
			want: &Command{Name: "c", Args: obj{"a": []any{int64(9007199254740993), uint64(18446744073709551615), float64(1000)}}}},
		{name: "json with blanks inside brackets", line: `c a={"x": 1, "y": [1, 2]} b=2`,
			want: &Command{Name: "c", Args: obj{"a": obj{"x": int64(1), "y": []any{int64(1), int64(2)}}, "b": int64(2)}}},
		{name: "json string with brackets and blanks", line: `c a={"x":"} ] {"} b=1`,
			want: &Command{Name: "c", Args: obj{"a": obj{"x": "} ] {"}, "b": int64(1)}}},
		{name: "json string escapes kept", line: `c a=["q\"uote","back\\slash","\u00e9"]`,
			want: &Command{Name: "c", Args: obj{"a": []any{`q"uote`, `back\slash`, "é"}}}},
		{name: "quoted json", line: `c a='{"x": "y z"}'`,
			want: &Command{Name: "c", Args: obj{"a": obj{"x": "y z"}}}},
		{name: "json after quoted key", line: `c "a"={"x":1}`,
			want: &Command{Name: "c", Args: obj{"a": obj{"x": int64(1)}}}},
		{name: "python literal", line: `c a={'k': 'v', "t": True, 'f': False, 'n': None, 'l': [1, 2,],}`,
			want: &Command{Name: "c", Args: obj{"a": obj{"k": "v", "t": true, "f": false, "n": nil, "l": []any{int64(1), int64(2)}}}}},
		{name: "fuzzy json names", line: `c a={'a':true,'b':false,'c':null}`,
			want: &Command{Name: "c", Args: obj{"a": obj{"a": true, "b": false, "c": nil}}}},
		{name: "python string escapes", line: `c a=['it\'s','\x41\u00e9\n','\101','a\qb','"']`,
			want: &Command{Name: "c", Args: obj{"a": []any{"it's", "Aé\n", "A", `a\qb`, `"`}}}},
		{name: "python exponent", line: `c a=[1e3,2.5E-1]`,
			want: &Command{Name: "c", Args: obj{"a": []any{float64(1000), 0.25}}}},
		{name: "invalid json", line: `c a=1 opts={x`, err: `syntax error at "opts": invalid JSON value: unknown name "x"`},
		{name: "truncated json", line: `c opts=[1,2`, err: `syntax error at "opts": invalid JSON value: unexpected end of JSON input`},
		{name: "json trailing data", line: `c opts={"x":1}}`,
			err: `syntax error at "opts": invalid JSON value: invalid character '}' after top-level value`},
		{name: "json with blank outside brackets", line: `c opts={"x":1} }`, err: `syntax error at "}": expected key=value`},
		{name: "json number out of range", line: `c opts=[1e999]`, err: `syntax error at "opts": invalid JSON value: number 1e999 is out of range`},
		{name: "unterminated string in json", line: `c opts={"x`, err: `syntax error at "opts={\"x": unterminated quote`},
		{name: "quoted invalid json", line: `c opts="[x y]"`, err: `syntax error at "opts": invalid JSON value: unknown name "x"`},

		// Dotted keys.
		{name: "dotted key", line: "c a.b.c=1", want: &Command{Name: "c", Args: obj{"a": obj{"b": obj{"c": int64(1)}}}}},
		{name: "dotted merge", line: "c a.b=1 a.c=2 d=x",
			want: &Command{Name: "c", Args: obj{"a": obj{"b": int64(1), "c": int64(2)}, "d": "x"}}},
		{name: "deep merge", line: "blockdev-add driver=qcow2 file.driver=file file.filename=a.img file.aio.x=1",
			want: &Command{Name: "blockdev-add", Args: obj{"driver": "qcow2",
				"file": obj{"driver": "file", "filename": "a.img", "aio": obj{"x": int64(1)}}}}},
		{name: "dotted key into json object", line: `c a={"b":1} a.c=2`,
			want: &Command{Name: "c", Args: obj{"a": obj{"b": int64(1), "c": int64(2)}}}},
		{name: "leaf then parent", line: "c a=1 a.b=2", err: `syntax error at "a.b": "a" is used both as a value and as an object`},
		{name: "parent then leaf", line: "c a.b=2 a=1", err: `syntax error at "a": "a" is used both as a value and as an object`},
		{name: "deep leaf then parent", line: "c a.b=1 a.b.c=2", err: `syntax error at "a.b.c": "a.b" is used both as a value and as an object`},
		{name: "parent then json leaf", line: `c a.b=2 a={"c":1}`, err: `syntax error at "a": "a" is used both as a value and as an object`},
		{name: "duplicate key", line: "c a=1 a=2", err: `syntax error at "a": key is set more than once`},
		{name: "duplicate dotted key", line: "c a.b=1 a.b=2", err: `syntax error at "a.b": key is set more than once`},
		{name: "duplicate key inside json", line: `c a={"b":1} a.b=2`, err: `syntax error at "a.b": key is set more than once`},
		{name: "empty middle segment", line: "c a..b=1", err: `syntax error at "a..b": empty segment in dotted key`},
		{name: "empty first segment", line: "c .a=1", err: `syntax error at ".a": empty segment in dotted key`},
		{name: "empty last segment", line: "c a.=1", err: `syntax error at "a.": empty segment in dotted key`},

		// Raw JSON.
		{name: "raw json", line: `{"execute":"query-status"}`, want: &Command{Raw: []byte(`{"execute":"query-status"}`)}},
		{name: "raw json compacted", line: `  { "execute" : "human-monitor-command", "arguments": {"command-line": "info  block"} }  `,
			want: &Command{Raw: []byte(`{"execute":"human-monitor-command","arguments":{"command-line":"info  block"}}`)}},
		{name: "raw json trailing garbage", line: `{"execute":"x"} y`,
			err: `syntax error at "{\"execute\":\"x\"} y": invalid JSON object: invalid character 'y' after top-level value`},
		{name: "raw json two objects", line: `{}{}`,
			err: `syntax error at "{}{}": invalid JSON object: invalid character '{' after top-level value`},
		{name: "raw json single quotes", line: `{'execute':'query-status'}`,
			err: `syntax error at "{'execute':'query-status'}": invalid JSON object: invalid character '\'' looking for beginning of object key string (a raw line is JSON: write strings in double quotes)`},
		{name: "raw json single-quoted value", line: `{"execute":'query-status'}`,
			err: `syntax error at "{\"execute\":'query-status'}": invalid JSON object: invalid character '\'' looking for beginning of value (a raw line is JSON: write strings in double quotes)`},
		{name: "raw json stray quote after", line: `{"execute":"x"}'`,
			err: `syntax error at "{\"execute\":\"x\"}'": invalid JSON object: invalid character '\'' after top-level value`},
		{name: "raw json truncated", line: `{"execute":`,
			err: `syntax error at "{\"execute\":": invalid JSON object: unexpected end of JSON input`},

		// One-line transactions.
		{name: "one-line transaction", line: "transaction( block-dirty-bitmap-add node=drive0 name=b1 )",
			want: &Command{Name: "transaction", Args: obj{"actions": []any{
				obj{"type": "block-dirty-bitmap-add", "data": obj{"node": "drive0", "name": "b1"}}}}}},
		{name: "empty one-line transaction", line: "transaction( )",
			want: &Command{Name: "transaction", Args: obj{"actions": []any{}}}},
		{name: "unclosed one-line transaction", line: "transaction( a x=1",
			err: `syntax error at "transaction(": transaction block is not closed by ")" on this line`},
		{name: "transaction with a blank is a command", line: "transaction (", err: `syntax error at "(": expected key=value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseLine(tt.line)
			if tt.err != "" {
				var se *qapi.SyntaxError
				if !errors.As(err, &se) {
					t.Fatalf("parseLine(%q) = %#v, %v; want *qapi.SyntaxError %q", tt.line, got, err, tt.err)
				}
				if err.Error() != tt.err {
					t.Fatalf("parseLine(%q) error\n got %s\nwant %s", tt.line, err, tt.err)
				}
				if got != nil {
					t.Errorf("parseLine(%q) returned %#v with its error", tt.line, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseLine(%q): %v", tt.line, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("parseLine(%q)\n got %s\nwant %s", tt.line, dump(got), dump(tt.want))
			}
			if got != nil && got.Raw == nil {
				if _, err := json.Marshal(got.Args); err != nil {
					t.Errorf("json.Marshal(Args): %v", err)
				}
			}
		})
	}
}

// dump shows a Command with the concrete types of its values, which
// DeepEqual compares and JSON output would hide.
func dump(c *Command) string {
	if c == nil {
		return "<nil>"
	}
	return fmt.Sprintf("Name=%q Raw=%q Args=%#v", c.Name, c.Raw, c.Args)
}

// TestMarshal checks the wire form the rest of qmpsh will send: integers
// stay integers and nesting follows the dotted keys.
func TestMarshal(t *testing.T) {
	cmd, err := parseLine(`blockdev-add node-name=n0 read-only=true cache.direct=false file.size=18446744073709551615 file.x=[1,2.5] id="a b"`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(cmd.Args)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"cache":{"direct":false},"file":{"size":18446744073709551615,"x":[1,2.5]},"id":"a b","node-name":"n0","read-only":true}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name   string
		tokens []string
		want   map[string]any
		err    string
	}{
		{name: "nil", tokens: nil, want: nil},
		{name: "empty", tokens: []string{}, want: nil},
		{name: "values", tokens: []string{"a=1", "b=true", "c.d=x", "e=a b"},
			want: obj{"a": int64(1), "b": true, "c": obj{"d": "x"}, "e": "a b"}},
		{name: "json with blanks", tokens: []string{`file={"driver": "file", "filename": "a b"}`},
			want: obj{"file": obj{"driver": "file", "filename": "a b"}}},
		// Each word loses its quotes as in the shell's line.
		{name: "quotes are removed", tokens: []string{`id="a b"`, `x='c d'`, `y=e\ f`}, want: obj{"id": "a b", "x": "c d", "y": "e f"}},
		{name: "json keeps its quotes", tokens: []string{`j=["a b", 'c']`}, want: obj{"j": []any{"a b", "c"}}},
		{name: "unterminated quote", tokens: []string{`id="a b`}, err: `syntax error at "id=\"a b": unterminated quote`},
		{name: "no equals", tokens: []string{"a=1", "query-status"}, err: `syntax error at "query-status": expected key=value`},
		{name: "empty token", tokens: []string{""}, err: `syntax error at "": expected key=value`},
		{name: "empty key", tokens: []string{"=x"}, err: `syntax error at "=x": expected key=value, the key before "=" is empty`},
		{name: "bad json", tokens: []string{"a=[1,"}, err: `syntax error at "a": invalid JSON value: unexpected end of JSON input`},
		{name: "conflict", tokens: []string{"a.b=1", "a=2"}, err: `syntax error at "a": "a" is used both as a value and as an object`},
		{name: "duplicate", tokens: []string{"a=1", "a=1"}, err: `syntax error at "a": key is set more than once`},
		{name: "empty segment", tokens: []string{"a..b=1"}, err: `syntax error at "a..b": empty segment in dotted key`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseArgs(tt.tokens)
			if tt.err != "" {
				var se *qapi.SyntaxError
				if !errors.As(err, &se) || err.Error() != tt.err {
					t.Fatalf("parseArgs(%q) = %v, %v; want error %s", tt.tokens, got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseArgs(%q): %v", tt.tokens, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("parseArgs(%q) = %#v, want %#v", tt.tokens, got, tt.want)
			}
		})
	}
}

func TestSyntaxErrorFields(t *testing.T) {
	_, err := parseLine("c a.b=1 a.b.c=2")
	var se *qapi.SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("got %T %v, want *qapi.SyntaxError", err, err)
	}
	if se.Token != "a.b.c" {
		t.Errorf("Token = %q, want %q", se.Token, "a.b.c")
	}
}

func TestParseStartsTransaction(t *testing.T) {
	tests := []struct {
		line string
		want bool
	}{
		{"transaction(", true},
		{"  transaction(  ", true},
		{"transaction( a x=1 )", true},
		{`transaction( a x="unterminated`, true},
		{"transaction", false},
		{"transaction (", false},
		{"transaction(x", false},
		{`"transaction("`, false},
		{`transaction\(`, false},
		{"query-status", false},
		{"", false},
		{"# transaction(", false},
		{`"unterminated transaction(`, false},
	}
	for _, tt := range tests {
		var p Parser
		in, _ := p.Parse(tt.line)
		if got := p.InBlock() || in != nil && in.tx != nil; got != tt.want {
			t.Errorf("Parse(%q) starts a transaction block: %v, want %v", tt.line, got, tt.want)
		}
	}
}

func action(typ string, data map[string]any) any {
	return obj{"type": typ, "data": data}
}

func txCommand(actions ...any) *Command {
	if actions == nil {
		actions = []any{}
	}
	return &Command{Name: "transaction", Args: obj{"actions": actions}}
}

func TestTransaction(t *testing.T) {
	const nestedErr = `syntax error at "transaction(": a transaction block is already open and blocks do not nest: end it with ")" first`
	type step struct {
		line string
		done bool
		err  string // exact error; the line is rejected and the block stays as it was
	}
	tests := []struct {
		name  string
		steps []step
		want  *Command // Command() after the last step
	}{
		{
			name: "multi-line",
			steps: []step{
				{line: "transaction("},
				{line: "block-dirty-bitmap-add node=drive0 name=bitmap1"},
				{line: "block-dirty-bitmap-clear node=drive0 name=bitmap0"},
				{line: ")", done: true},
			},
			want: txCommand(
				action("block-dirty-bitmap-add", obj{"node": "drive0", "name": "bitmap1"}),
				action("block-dirty-bitmap-clear", obj{"node": "drive0", "name": "bitmap0"})),
		},
		{
			name: "closing paren on the last action line",
			steps: []step{
				{line: "transaction("},
				{line: "drive-backup device=d0 target=t.img sync=full"},
				{line: "blockdev-snapshot-sync node-name=n0 snapshot-file=s.img )", done: true},
			},
			want: txCommand(
				action("drive-backup", obj{"device": "d0", "target": "t.img", "sync": "full"}),
				action("blockdev-snapshot-sync", obj{"node-name": "n0", "snapshot-file": "s.img"})),
		},
		{
			name: "first action on the opening line",
			steps: []step{
				{line: "transaction( abort"},
				{line: "  )  ", done: true},
			},
			want: txCommand(action("abort", obj{})),
		},
		{
			name:  "all on one line",
			steps: []step{{line: "transaction( a x=1 )", done: true}},
			want:  txCommand(action("a", obj{"x": int64(1)})),
		},
		{
			name:  "empty block",
			steps: []step{{line: "transaction("}, {line: ")", done: true}},
			want:  txCommand(),
		},
		{
			name: "typed values and dotted keys in data",
			steps: []step{
				{line: "transaction("},
				{line: `x a.b=1 a.c=true l=[1,"2"] s="p q" )`, done: true},
			},
			want: txCommand(action("x", obj{"a": obj{"b": int64(1), "c": true}, "l": []any{int64(1), "2"}, "s": "p q"})),
		},
		{
			name: "blank and comment lines are skipped",
			steps: []step{
				{line: "transaction("},
				{line: ""},
				{line: "   "},
				{line: "# the next action"},
				{line: "a"},
				{line: ")", done: true},
			},
			want: txCommand(action("a", obj{})),
		},
		{
			name: "zero value without the opening line",
			steps: []step{
				{line: "a"},
				{line: ")", done: true},
			},
			want: txCommand(action("a", obj{})),
		},
		{
			// qmp-shell silently starts again, dropping "a".
			name: "transaction( inside a block is rejected",
			steps: []step{
				{line: "transaction("},
				{line: "a"},
				{line: "transaction( b", err: nestedErr},
				{line: "transaction(", err: nestedErr},
				{line: "  transaction( )", err: nestedErr},
				{line: ")", done: true},
			},
			want: txCommand(action("a", obj{})),
		},
		{
			name: "transaction( twice on the opening line",
			steps: []step{
				{line: "transaction( transaction( a )", err: nestedErr},
				{line: "a )", done: true},
			},
			want: txCommand(action("a", obj{})),
		},
		{
			name: "transaction( after a first action line",
			steps: []step{
				{line: "a"},
				{line: "transaction(", err: nestedErr},
				{line: ")", done: true},
			},
			want: txCommand(action("a", obj{})),
		},
		{
			name: "bad action line is rejected and the block stays open",
			steps: []step{
				{line: "transaction("},
				{line: "a x=1 oops", err: `syntax error at "oops": expected key=value`},
				{line: "a x=1 x=2 )", err: `syntax error at "x": key is set more than once`},
				{line: "a x=1"},
				{line: ")", done: true},
			},
			want: txCommand(action("a", obj{"x": int64(1)})),
		},
		{
			name: "input after the closing paren",
			steps: []step{
				{line: "transaction( a"},
				{line: ") b", err: `syntax error at "b": unexpected input after the closing ")" of a transaction`},
				{line: ")", done: true},
			},
			want: txCommand(action("a", obj{})),
		},
		{
			name: "quoted paren does not close",
			steps: []step{
				{line: "transaction( a"},
				{line: `b ")"`, err: `syntax error at ")": expected key=value`},
				{line: `")"`},
				{line: ")", done: true},
			},
			want: txCommand(action("a", obj{}), action(")", obj{})),
		},
		{
			name: "paren glued to a value does not close",
			steps: []step{
				{line: "transaction("},
				{line: "a x=1)"},
				{line: ")", done: true},
			},
			want: txCommand(action("a", obj{"x": "1)"})),
		},
		{
			name: "action type must not be key=value",
			steps: []step{
				{line: "transaction("},
				{line: "x=1 )", err: `syntax error at "x=1": expected a transaction action type`},
				{line: ")", done: true},
			},
			want: txCommand(),
		},
		{
			name: "raw json is rejected inside a block",
			steps: []step{
				{line: "transaction("},
				{line: ` {"type":"a","data":{}}`, err: `syntax error at "{\"type\":\"a\",\"data\":{}}": raw JSON is not allowed in a transaction block`},
				{line: ")", done: true},
			},
			want: txCommand(),
		},
		{
			name: "unterminated quote",
			steps: []step{
				{line: "transaction("},
				{line: `a x="y )`, err: `syntax error at "x=\"y )": unterminated quote`},
			},
		},
		{
			name: "adding after the close",
			steps: []step{
				{line: "transaction( a )", done: true},
				{line: "b", done: true, err: "transaction block is already closed"},
			},
			want: txCommand(action("a", obj{})),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tr transaction
			for i, s := range tt.steps {
				done, err := tr.add(s.line, nil)
				if s.err != "" {
					if err == nil || err.Error() != s.err {
						t.Fatalf("step %d Add(%q) error = %v, want %s", i, s.line, err, s.err)
					}
				} else if err != nil {
					t.Fatalf("step %d Add(%q): %v", i, s.line, err)
				}
				if done != s.done {
					t.Fatalf("step %d Add(%q) done = %v, want %v", i, s.line, done, s.done)
				}
				if !done && tr.command() != nil {
					t.Fatalf("step %d: Command() is not nil while the block is open", i)
				}
			}
			got := tr.command()
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Command()\n got %s\nwant %s", dump(got), dump(tt.want))
			}
			if got != nil {
				if _, err := json.Marshal(got.Args); err != nil {
					t.Fatalf("json.Marshal: %v", err)
				}
			}
		})
	}
}

// TestTransactionWire checks that actions marshal as QEMU expects them,
// with an empty data object rather than null.
func TestTransactionWire(t *testing.T) {
	var tr transaction
	for _, l := range []string{"transaction(", "abort", "block-dirty-bitmap-add node=d0 name=b persistent=true )"} {
		if _, err := tr.add(l, nil); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(tr.command().Args)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"actions":[{"data":{},"type":"abort"},{"data":{"name":"b","node":"d0","persistent":true},"type":"block-dirty-bitmap-add"}]}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}

	// An empty block marshals "actions" as [], never null.
	var empty transaction
	if done, err := empty.add("transaction( )", nil); !done || err != nil {
		t.Fatalf("Add = %v, %v", done, err)
	}
	b, _ = json.Marshal(empty.command().Args)
	if string(b) != `{"actions":[]}` {
		t.Errorf("empty block: got %s", b)
	}
}

// TestTransactionCommandIsACopy checks that a caller changing the returned
// actions does not change the Transaction's.
func TestTransactionCommandIsACopy(t *testing.T) {
	var tr transaction
	if _, err := tr.add("transaction( a )", nil); err != nil {
		t.Fatal(err)
	}
	c := tr.command()
	c.Args["actions"].([]any)[0] = "changed"
	if got := tr.command().Args["actions"].([]any)[0]; reflect.DeepEqual(got, "changed") {
		t.Error("Command shares its actions slice with the Transaction")
	}
}

// TestParseArgsOneLine: one argument with blanks is parsed as a line.
func TestParseArgsOneLine(t *testing.T) {
	for _, line := range []string{
		"qom-get path=/machine property=type",
		"query-status ",
		` human-monitor-command command-line="info kvm"`,
		"transaction( abort )",
		`x file={"a": [1, 2]} id='a b'`,
	} {
		var p Parser
		want, werr := p.Parse(line)
		got, err := ParseArgs([]string{line})
		if werr != nil || err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseArgs(%q) = %+v, %v; Parse = %+v, %v", line, got, err, want, werr)
		}
	}
	for _, line := range []string{" ", "# comment", "transaction( abort", "a path"} {
		if in, err := ParseArgs([]string{line}); err == nil {
			t.Errorf("ParseArgs(%q) = %+v, want an error", line, in)
		}
	}
}

// exec takes the shell's hmp line too, in one argument or in words: the
// human-monitor-command the shell sends for it, marked HMP so that exec
// prints its text as the shell does.
func TestParseArgsHMP(t *testing.T) {
	want := &Input{Name: "human-monitor-command", Args: []qapi.KeyValue{{Key: "command-line", Value: "info status"}}, HMP: true}
	for _, args := range [][]string{{"hmp info status"}, {" hmp  info status "}, {"hmp", "info", "status"}} {
		got, err := ParseArgs(args)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseArgs(%q) = %+v, %v; want %+v", args, got, err, want)
		}
	}
	for _, args := range [][]string{{"hmp"}, {"hmp  "}} {
		if _, err := ParseArgs(args); err == nil || !strings.Contains(err.Error(), "hmp info status") {
			t.Errorf("ParseArgs(%q): %v, want an error with an example", args, err)
		}
	}
}

// sendfd's own syntax (a path first) given to exec: the syntax error
// says where sendfd works.
func TestParseArgsSendfd(t *testing.T) {
	_, err := ParseArgs([]string{"sendfd", "/tmp/disk.img", "fdname=d0"})
	if err == nil || !strings.Contains(err.Error(), `syntax error at "/tmp/disk.img"`) || !strings.Contains(err.Error(), "qmpsh connect") {
		t.Errorf("ParseArgs(sendfd PATH) = %v, want a syntax error saying sendfd is the shell's", err)
	}
}

// A word of the interactive shell sent as a command (qmpsh exec exit)
// gets a hint that says so, not QEMU's nearest command ("quit").
func TestExplainShellWord(t *testing.T) {
	notFound := func(name string) error {
		return &qmp.ExecuteError{Command: name, Class: "CommandNotFound", Desc: "The command " + name + " has not been found"}
	}
	in, err := ParseArgs([]string{"exit"})
	if err != nil {
		t.Fatal(err)
	}
	got := in.Explain(nil, notFound("exit"))
	var he *qapi.HintError
	if !errors.As(got, &he) || !strings.Contains(he.Hint, "not a QMP command") {
		t.Errorf("exit: %v, want a hint that it is the shell's", got)
	}
	in, _ = ParseArgs([]string{"query-stat"})
	if got := in.Explain(nil, notFound("query-stat")); errors.As(got, &he) {
		t.Errorf("query-stat without a schema: %v, want the reply as it came", got)
	}
}
