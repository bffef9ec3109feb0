// Package qapi knows a QMP server's QAPI schema, as query-qmp-schema
// describes it, and what it says about the commands a user types.
//
// It indexes the schema (index.go) and fetches it through a function that
// runs one command, so that it needs no client; types and checks key=value
// arguments by the schema, with "did you mean" suggestions (check.go,
// suggest.go); arranges dotted keys into objects (keys.go); parses values:
// qmp-shell's guessing, integers with size suffixes, booleans (values.go);
// renders help for people and as JSON (help.go); and offers Tab
// completions for arguments and values (complete.go).
//
// It deliberately knows nothing of lines, quoting, transaction blocks or
// built-in commands (pkg/shell lexes a line into a name and KeyValue
// words), nor of the connection or QMP's error replies (pkg/qmp): it
// imports neither, so that exec, the schema command, the shell and a
// proxy can all use it. A nil *Schema is valid everywhere and means "no
// schema": values are then guessed as qmp-shell does.
package qapi
