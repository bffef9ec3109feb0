package qapi

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// SyntaxError reports a line that cannot be parsed. Token is the offending
// piece of input: the whole token for a malformed word, the key for a bad
// key or value, the rest of the line for an unterminated quote.
type SyntaxError struct {
	Token string
	Msg   string
}

// maxErrorToken bounds how much of Token Error shows, so that a huge raw
// JSON line does not flood the terminal.
const maxErrorToken = 64

// Error returns a one-line description, e.g.
// `syntax error at "foo": expected key=value`.
func (e *SyntaxError) Error() string {
	tok := e.Token
	if len(tok) > maxErrorToken {
		cut := maxErrorToken
		for cut > 0 && !utf8.RuneStart(tok[cut]) {
			cut--
		}
		tok = tok[:cut] + "..."
	}
	// %q-style quoting keeps control characters such as newlines from
	// breaking the message over several lines.
	return "syntax error at " + strconv.Quote(tok) + ": " + e.Msg
}

// ValidationError reports a command line that the schema rejects, so that
// it is not sent. Error gives one line such as
//
//	blockdev-add: unknown argument "nodename" (did you mean "node-name"?)
//	object-add: argument "qom-type" is missing
//	unknown command "query-stat" (did you mean "query-status"?)
type ValidationError struct {
	// Command is the command (or transaction action type) being checked.
	Command string
	// Arg is the dotted argument concerned, "" when the command itself
	// is unknown.
	Arg string
	// Msg states the problem, without the command prefix and suggestion.
	Msg string
	// Suggestion is the valid name or value closest to what was typed,
	// or "".
	Suggestion string
}

// Error returns "COMMAND: MSG (did you mean "SUGGESTION"?)", without the
// prefix when Arg is empty (Msg then names the command itself).
func (e *ValidationError) Error() string {
	var b strings.Builder
	if e.Arg != "" && e.Command != "" {
		b.WriteString(e.Command)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Suggestion != "" {
		b.WriteString(" (did you mean ")
		b.WriteString(strconv.Quote(e.Suggestion))
		b.WriteString("?)")
	}
	return b.String()
}

// HintError is a server's error reply with the schema's explanation of
// what was wrong with the command, such as the argument name meant.
type HintError struct {
	Err  error // the reply, as the client reported it
	Hint string
}

// Error returns the reply's "Class: description" and the hint in
// parentheses, on one line.
func (e *HintError) Error() string { return e.Err.Error() + " (" + e.Hint + ")" }

// Unwrap returns the reply.
func (e *HintError) Unwrap() error { return e.Err }
