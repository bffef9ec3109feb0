package shell

import (
	"errors"
	"strconv"
	"strings"

	"github.com/qmpsh/qmpsh/pkg/qmp"
)

// NeedsSchema reports whether some value in args could be typed
// differently by the schema than by qmp-shell's guessing, so that sending
// args correctly needs the schema. Guessing makes integers, booleans and
// JSON of some values and strings of the rest; the schema can make a
// string of any of the former, and of the latter an integer (0x10, 1G), a
// number (1.5), a boolean (on, off, yes, no) or null. Every other value is
// a string either way, so a one-shot command made only of such values can
// skip fetching the schema (about 200 KB on QEMU 7.2).
func NeedsSchema(args []KeyValue) bool {
	for _, kv := range args {
		v := kv.Value
		if v == "" {
			continue
		}
		if _, guessedString := mustGuess(v).(string); !guessedString {
			return true
		}
		if _, err := parseInteger(v); err == nil {
			return true
		}
		if _, err := strconv.ParseFloat(v, 64); err == nil {
			return true
		}
		if _, ok := parseBool(v, true); ok || v == "null" {
			return true
		}
	}
	return false
}

// mustGuess is parseValue without its errors: what a value guesses to,
// nil when it cannot be guessed at all.
func mustGuess(v string) any {
	g, err := parseValue("", v)
	if err != nil {
		return nil
	}
	return g
}

// CommandArgs types the arguments of command name for sending, as Build
// does, except that a command the schema does not know has its values
// guessed instead of being an error: the server has the last word on
// which commands exist (it answers CommandNotFound, which Explain adds a
// suggestion to).
func (s *Schema) CommandArgs(name string, args []KeyValue) (map[string]any, error) {
	if _, ok := s.Command(name); !ok {
		return guessKVs(args)
	}
	return s.Build(name, args)
}

// HintError is a server's error reply with the schema's explanation of
// what was wrong with the command, such as the argument name meant.
type HintError struct {
	Err  error // the reply, a *qmp.ExecuteError
	Hint string
}

// Error returns the reply's "Class: description" and the hint in
// parentheses, on one line.
func (e *HintError) Error() string { return e.Err.Error() + " (" + e.Hint + ")" }

// Unwrap returns the reply.
func (e *HintError) Unwrap() error { return e.Err }

// Explain adds to err, the server's error reply to command name sent with
// args, what the schema finds wrong with the command: the command meant
// for CommandNotFound, else the argument problem that Build reports. It
// returns err unchanged when err is not an error reply or the schema sees
// nothing wrong.
func (s *Schema) Explain(name string, args []KeyValue, err error) error {
	var ee *qmp.ExecuteError
	if s == nil || !errors.As(err, &ee) {
		return err
	}
	if _, ok := s.Command(name); !ok {
		if sugg := s.Suggest(name); sugg != "" {
			return &HintError{Err: err, Hint: "did you mean " + strconv.Quote(sugg) + "?"}
		}
		return err
	}
	if !s.HasTypes() {
		return err
	}
	_, berr := s.Build(name, args)
	var ve *ValidationError
	if !errors.As(berr, &ve) {
		return err
	}
	hint := ve.Msg
	if ve.Suggestion != "" {
		hint += "; did you mean " + strconv.Quote(ve.Suggestion) + "?"
	}
	return &HintError{Err: err, Hint: strings.TrimSpace(hint)}
}
