package qapi

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// replyError stands for a client's error reply, which this package does
// not know.
type replyError struct{ class, desc string }

func (e *replyError) Error() string { return e.class + ": " + e.desc }

func TestNeedsSchema(t *testing.T) {
	cases := []struct {
		value string
		needs bool
	}{
		{"/machine", false},
		{"node0", false},
		{"null-co", false},
		{"", false},
		{"maybe", false},
		{"a b", false},
		{"123", true},   // a string or an integer
		{"-1", true},    // likewise
		{"0x10", true},  // a string, or 16
		{"1G", true},    // a string, or a size
		{"1.5", true},   // a string, or a number
		{"true", true},  // a string, or a boolean
		{"on", true},    // a string, or a boolean
		{"NO", true},    // likewise
		{"null", true},  // a string, or null
		{"[1]", true},   // JSON, or a string
		{"{}", true},    // likewise
		{"{bad", true},  // malformed JSON: let the schema decide
		{"1e3", true},   // a number
		{"0b101", true}, // binary
	}
	for _, c := range cases {
		args := []KeyValue{{Key: "path", Value: "/machine"}, {Key: "k", Value: c.value}}
		if got := NeedsSchema(args); got != c.needs {
			t.Errorf("NeedsSchema(k=%q) = %v, want %v", c.value, got, c.needs)
		}
	}
	if NeedsSchema(nil) {
		t.Error("NeedsSchema(nil) = true")
	}
}

func TestSchemaCommandArgs(t *testing.T) {
	s := testSchema(t)
	// A known command is typed and checked.
	args, err := s.CommandArgs("object-add", []KeyValue{{"qom-type", "secret"}, {"id", "s0"}, {"data", "123"}})
	if err != nil || args["data"] != "123" {
		t.Fatalf("object-add: %v, %v", args, err)
	}
	_, err = s.CommandArgs("blockdev-add", []KeyValue{{"driver", "null-co"}, {"nodename", "n0"}})
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Arg != "nodename" || ve.Suggestion != "node-name" {
		t.Fatalf("blockdev-add nodename=: %v", err)
	}
	// An unknown command is guessed, for the server to answer.
	args, err = s.CommandArgs("x-future-command", []KeyValue{{"n", "123"}})
	if err != nil || args["n"] != int64(123) {
		t.Fatalf("unknown command: %v, %v", args, err)
	}
	// Without a schema, guessing.
	var none *Schema
	args, err = none.CommandArgs("object-add", []KeyValue{{"data", "123"}})
	if err != nil || args["data"] != int64(123) {
		t.Fatalf("nil schema: %v, %v", args, err)
	}
}

func TestSchemaExplain(t *testing.T) {
	s := testSchema(t)
	notFound := &replyError{"CommandNotFound", "The command qom-lsit has not been found"}
	generic := &replyError{"GenericError", "Parameter 'nodename' is unexpected"}
	cases := []struct {
		name string
		args []KeyValue
		err  error
		want string
	}{
		{"qom-lsit", nil, notFound, `CommandNotFound: The command qom-lsit has not been found (did you mean "qom-list"?)`},
		{"zzzzzzzz", nil, notFound, `CommandNotFound: The command qom-lsit has not been found`},
		{"blockdev-add", []KeyValue{{"driver", "null-co"}, {"nodename", "n0"}}, generic,
			`GenericError: Parameter 'nodename' is unexpected (unknown argument "nodename"; did you mean "node-name"?)`},
		{"object-add", []KeyValue{{"qom-type", "secret"}}, generic,
			`GenericError: Parameter 'nodename' is unexpected (argument "id" is missing)`},
		// The schema sees nothing wrong: QEMU's error alone.
		{"blockdev-add", []KeyValue{{"driver", "null-co"}, {"node-name", "n0"}}, generic,
			`GenericError: Parameter 'nodename' is unexpected`},
	}
	for _, c := range cases {
		got := s.Explain(c.name, c.args, c.err)
		if got.Error() != c.want {
			t.Errorf("Explain(%s) = %q, want %q", c.name, got, c.want)
		}
		var ee *replyError
		if !errors.As(got, &ee) {
			t.Errorf("Explain(%s) lost the reply: %T", c.name, got)
		}
	}
	// No schema: unchanged. (Only error replies are given to Explain:
	// pkg/shell's Input.Explain tells them from other errors.)
	var none *Schema
	if got := none.Explain("qom-lsit", nil, notFound); got != error(notFound) {
		t.Errorf("nil schema Explain = %v", got)
	}
}

// FuzzBuild: typing arbitrary key=value text never panics, fails with a
// one-line *SyntaxError or *ValidationError, and yields arguments that
// encode as JSON.
func FuzzBuild(f *testing.F) {
	s := testSchema(f)
	for _, seed := range [][3]string{
		{"blockdev-add", "driver", "qcow2"},
		{"blockdev-add", "file", `{"driver":"file","filename":"/x"}`},
		{"block_resize", "size", "0x10k"},
		{"object-add", "data", "123"},
		{"qom-set", "value.x.y", "1"},
		{"device_add", "bootindex", "-1_0"},
		{"x", "a", `{'k': [1,], 'n': None}`},
		{"transaction", "actions", `[{"type":"abort","data":{}}]`},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, name, key, value string) {
		for _, schema := range []*Schema{s, nil} {
			args, err := schema.Build(name, []KeyValue{{Key: key, Value: value}, {Key: "id", Value: value}})
			if err != nil {
				var ve *ValidationError
				var se *SyntaxError
				if !errors.As(err, &ve) && !errors.As(err, &se) {
					t.Fatalf("Build(%q, %q=%q) error %T %v", name, key, value, err, err)
				}
				if strings.ContainsAny(err.Error(), "\n\r") {
					t.Fatalf("Build(%q, %q=%q) error spans lines: %q", name, key, value, err)
				}
				continue
			}
			if _, err := json.Marshal(args); err != nil {
				t.Fatalf("Build(%q, %q=%q) arguments do not encode: %v", name, key, value, err)
			}
		}
	})
}

// A dotted key deeper than QEMU takes is refused, at once: such a key
// used to cost time and memory growing with the square of its length.
func TestDottedKeyDepth(t *testing.T) {
	var none *Schema
	key := strings.Repeat("a.", maxKeyDepth-1) + "a"
	args, err := none.CommandArgs("x", []KeyValue{{Key: key, Value: "v"}})
	if err != nil {
		t.Fatalf("a key %d deep: %v", maxKeyDepth, err)
	}
	for range maxKeyDepth - 1 {
		args = args["a"].(map[string]any)
	}
	if args["a"] != "v" {
		t.Fatalf("a key %d deep built %v", maxKeyDepth, args)
	}
	_, err = none.CommandArgs("x", []KeyValue{{Key: strings.Repeat("a.", 40000) + "a", Value: "v"}})
	var se *SyntaxError
	if !errors.As(err, &se) || !strings.Contains(se.Msg, "at most 1024 levels") {
		t.Fatalf("a key 40001 deep: %v", err)
	}
}
