package shell

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/qmpsh/qmpsh/pkg/qapi"
	"github.com/qmpsh/qmpsh/pkg/wire"
)

// Parser turns lines into Inputs. It keeps state only while a
// transaction( block is open over several lines.
type Parser struct {
	// Schema, if set, returns the schema that types each action of a
	// transaction block as its line is read, so that a line it rejects
	// can be typed again; nil, or a nil schema, guesses. It is called
	// only for action lines.
	Schema func() *qapi.Schema

	block *transaction // the open block, or nil
}

// InBlock reports whether a transaction block is open: the next lines are
// its actions, until ")".
func (p *Parser) InBlock() bool { return p.block != nil }

// Abandon drops an open transaction block.
func (p *Parser) Abandon() { p.block = nil }

// Parse parses one line: `command key=value ...`, a raw JSON object when
// the trimmed line starts with '{', or a line of a transaction block. It
// returns nil and no error when there is nothing to run yet: an empty line,
// a comment (a line whose first non-blank character is '#'), or a line
// of a block still open. A block may open and close on one line,
// `transaction( type key=value ... )`. A line in error is rejected as a
// whole and changes nothing, except that an opening "transaction(" opens
// the block whatever follows it. Errors are *qapi.SyntaxError, and
// *qapi.ValidationError for an action the schema rejects.
func (p *Parser) Parse(line string) (*Input, error) {
	if p.block != nil {
		done, err := p.block.add(line, p.schema())
		return p.closed(done, err)
	}
	trimmed := strings.TrimSpace(line)
	if trimmed == "" || trimmed[0] == '#' {
		return nil, nil
	}
	if trimmed[0] == '{' {
		return parseRaw(trimmed)
	}
	lx := lexer{s: line}
	first, _, err := lx.next()
	if err != nil {
		return nil, err
	}
	if !first.is(transactionOpen) {
		if err := checkName(first.text, "a command name"); err != nil {
			return nil, err
		}
		rest, err := lx.rest()
		if err != nil {
			return nil, err
		}
		args, err := splitArgs(words(rest))
		if err != nil {
			return nil, err
		}
		return &Input{Name: first.text, Args: args}, nil
	}
	p.block = new(transaction)
	rest, err := lx.rest()
	if err != nil {
		p.block.opened = true
		return nil, err
	}
	return p.closed(p.block.addWords(append([]token{first}, rest...), p.schema()))
}

func (p *Parser) schema() *qapi.Schema {
	if p.Schema == nil {
		return nil
	}
	return p.Schema()
}

// closed returns the Input of the block once a line has closed it.
func (p *Parser) closed(done bool, err error) (*Input, error) {
	if err != nil || !done {
		return nil, err
	}
	cmd := p.block.command()
	p.block = nil
	return &Input{Name: cmd.Name, tx: cmd}, nil
}

// ParseArgs makes an Input of words the operating system's shell has
// split, as in `qmpsh exec COMMAND key=value...`, so that the same words
// give the same Input as Parse does for the line they make:
//
//   - One argument with blanks in it or around it is a line, as people
//     paste it (`exec 'qom-get path=/machine property=type'`), and is
//     parsed by Parse, one-line transaction blocks included.
//   - Otherwise each argument is one word: the blanks in it are its own,
//     but quotes and backslashes in it are removed as Parse removes them,
//     so `command-line="info kvm"` passed through the operating system's
//     shell in single quotes is `command-line=info kvm`, as in the shell.
//     A value starting with '{' or '[' is kept verbatim, as in Parse.
//   - One argument starting with '{' is a raw JSON object.
//
// "transaction(" as its own argument is a command name like any other.
func ParseArgs(args []string) (*Input, error) {
	if len(args) == 0 {
		return nil, errors.New("expected a command name")
	}
	if trimmed := strings.TrimSpace(args[0]); strings.HasPrefix(trimmed, "{") {
		if len(args) > 1 {
			return nil, fmt.Errorf("a raw JSON message must be the only argument, got %d more", len(args)-1)
		}
		return parseRaw(trimmed)
	}
	if in, ok, err := parseHMP(args); ok {
		return in, err
	}
	if len(args) == 1 && (strings.ContainsFunc(args[0], unicode.IsSpace) || strings.HasPrefix(args[0], "transaction(")) {
		return parseOneLine(args[0])
	}
	words := make([]string, len(args))
	for i, a := range args {
		w, err := unquoteWord(a)
		if err != nil {
			return nil, err
		}
		words[i] = w
	}
	if strings.Contains(words[0], "=") || words[0] == "" {
		return nil, fmt.Errorf("expected a command name first, got %q", args[0])
	}
	kvs, err := splitArgs(words[1:])
	if err != nil {
		if hint := shellWordHint[words[0]]; hint != "" {
			// sendfd PATH ...: the shell's own syntax, not a command's.
			return nil, fmt.Errorf("%w (%s)", err, hint)
		}
		return nil, err
	}
	return &Input{Name: words[0], Args: kvs}, nil
}

// parseHMP takes the shell's hmp line, as one argument ('hmp info
// status') or words (hmp info status): human-monitor-command with the
// rest as its command line, as the shell sends it. ok is false when args
// are not one.
func parseHMP(args []string) (in *Input, ok bool, err error) {
	first, rest, _ := strings.Cut(strings.TrimLeftFunc(args[0], unicode.IsSpace), " ")
	if len(args) > 1 {
		first, rest = args[0], strings.Join(args[1:], " ")
	}
	if first != "hmp" {
		return nil, false, nil
	}
	if rest = strings.TrimSpace(rest); rest == "" {
		return nil, true, errors.New("hmp needs a human monitor command, such as: hmp info status")
	}
	return &Input{Name: "human-monitor-command", Args: []qapi.KeyValue{{Key: "command-line", Value: rest}}, HMP: true}, true, nil
}

// parseOneLine parses a whole line given as one argument: it must hold
// one command, not a comment or a block left open.
func parseOneLine(line string) (*Input, error) {
	var p Parser
	in, err := p.Parse(line)
	switch {
	case err != nil:
		return nil, err
	case p.InBlock():
		return nil, &qapi.SyntaxError{Token: strings.TrimSpace(line), Msg: `transaction block not closed: end it with ")"`}
	case in == nil:
		return nil, fmt.Errorf("expected a command name first, got %q", line)
	}
	return in, nil
}

// unquoteWord removes quotes and backslashes from one word as the lexer
// does, blanks included in the word.
func unquoteWord(w string) (string, error) {
	lx := lexer{s: w, word: true}
	tok, _, err := lx.next()
	return tok.text, err
}

// splitArgs splits key=value words at their first '=', leaving the values
// as typed; nil for no words.
func splitArgs(words []string) ([]qapi.KeyValue, error) {
	if len(words) == 0 {
		return nil, nil
	}
	kvs := make([]qapi.KeyValue, 0, len(words))
	for _, w := range words {
		key, val, err := splitWord(w)
		if err != nil {
			return nil, err
		}
		kvs = append(kvs, qapi.KeyValue{Key: key, Value: val})
	}
	return kvs, nil
}

// splitWord splits a key=value word at its first '='.
func splitWord(w string) (key, val string, err error) {
	key, val, ok := strings.Cut(w, "=")
	if !ok {
		return "", "", &qapi.SyntaxError{Token: w, Msg: "expected key=value"}
	}
	if key == "" {
		return "", "", &qapi.SyntaxError{Token: w, Msg: `expected key=value, the key before "=" is empty`}
	}
	return key, val, nil
}

// parseRaw checks that s is exactly one JSON object; s starts with '{', so
// json.Valid (which rejects trailing data) is enough to know that.
func parseRaw(s string) (*Input, error) {
	b := []byte(s)
	if !json.Valid(b) {
		var v any
		msg := "invalid JSON object"
		if err := json.Unmarshal(b, &v); err != nil {
			msg += ": " + err.Error()
			// QEMU's parser takes 'single quotes' (scripts piping to
			// socat use them); the shell checks a raw line as JSON. Said
			// only where a quote opens a key or a value.
			var se *json.SyntaxError
			if errors.As(err, &se) && se.Offset > 0 && b[se.Offset-1] == '\'' &&
				(strings.HasSuffix(se.Error(), "looking for beginning of value") ||
					strings.HasSuffix(se.Error(), "looking for beginning of object key string")) {
				msg += " (a raw line is JSON: write strings in double quotes)"
			}
		}
		return nil, &qapi.SyntaxError{Token: s, Msg: msg}
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, &qapi.SyntaxError{Token: s, Msg: "invalid JSON object: " + err.Error()}
	}
	// JSON that QEMU's parser would not take as one message would be
	// answered with errors without an id, which end the session: say
	// so now, with QEMU's words. The client adds its id, 4 tokens.
	if why := wire.QEMURefuses(buf.Bytes(), 4); why != "" {
		return nil, &qapi.SyntaxError{Token: s, Msg: "QEMU would refuse this message: " + why}
	}
	return &Input{Raw: buf.Bytes()}, nil
}

// checkName rejects names QEMU can never accept and that point at a typing
// mistake: an empty word or a key=value pair where a name belongs.
func checkName(name, what string) error {
	if name == "" || strings.Contains(name, "=") {
		return &qapi.SyntaxError{Token: name, Msg: "expected " + what}
	}
	return nil
}

// transactionOpen and transactionClose are the bare words that delimit a
// qmp-shell transaction block.
const (
	transactionOpen  = "transaction("
	transactionClose = ")"
)

// transaction collects the actions of a qmp-shell style `transaction(`
// block:
//
//	transaction(
//	block-dirty-bitmap-add node=drive0 name=bitmap1
//	block-dirty-bitmap-clear node=drive0 name=bitmap0
//	)
//
// The zero value is an open block, whose opening line may have been read
// already or not.
type transaction struct {
	actions []any
	done    bool
	opened  bool // a line has been read: "transaction(" now would nest
}

// add adds one more line of the block, its action's data typed by s
// (nil: guessed). It follows qmp-shell: a leading "transaction(" word
// on the first line opens the block; words after it on the same line are
// the first action; a line whose
// first word is ")" closes the block; otherwise the line is one action,
// `type key=value ...`, and a last word ")" closes the block after it.
// done is true once the block is closed, and command then returns the
// transaction.
//
// A line in error is rejected as a whole and the block stays open, so the
// user can type it again. qmp-shell does the same, except that it abandons
// the block on `) extra words`, and that a "transaction(" inside the block
// silently starts it again, dropping the actions so far; here both lines
// are rejected like any other (blocks do not nest).
// Empty lines and comments are skipped; raw JSON is not allowed. Adding
// to a closed block is an error and leaves done true.
func (t *transaction) add(line string, s *qapi.Schema) (done bool, err error) {
	if t.done {
		return true, errors.New("transaction block is already closed")
	}
	trimmed := strings.TrimSpace(line)
	if trimmed == "" || trimmed[0] == '#' {
		return false, nil
	}
	if trimmed[0] == '{' {
		return false, &qapi.SyntaxError{Token: trimmed, Msg: "raw JSON is not allowed in a transaction block"}
	}
	lx := lexer{s: line}
	toks, err := lx.rest()
	if err != nil {
		return false, err
	}
	return t.addWords(toks, s)
}

// addWords is add for a line already lexed.
func (t *transaction) addWords(toks []token, s *qapi.Schema) (done bool, err error) {
	if len(toks) > 0 && toks[0].is(transactionOpen) {
		if t.opened {
			return false, errNestedTransaction
		}
		toks = toks[1:]
	}
	t.opened = true
	if len(toks) > 0 && toks[0].is(transactionOpen) {
		return false, errNestedTransaction
	}
	if len(toks) > 0 && toks[0].is(transactionClose) {
		if len(toks) > 1 {
			return false, &qapi.SyntaxError{Token: toks[1].text, Msg: `unexpected input after the closing ")" of a transaction`}
		}
		t.done = true
		return true, nil
	}
	if len(toks) == 0 {
		return false, nil
	}
	closing := len(toks) > 1 && toks[len(toks)-1].is(transactionClose)
	if closing {
		toks = toks[:len(toks)-1]
	}
	typ := toks[0].text
	if err := checkName(typ, "a transaction action type"); err != nil {
		return false, err
	}
	kvs, err := splitArgs(words(toks[1:]))
	if err != nil {
		return false, err
	}
	data, err := s.BuildAction(typ, kvs)
	if err != nil {
		return false, err
	}
	t.actions = append(t.actions, map[string]any{"type": typ, "data": data})
	t.done = closing
	return closing, nil
}

// errNestedTransaction rejects a "transaction(" inside an open block.
var errNestedTransaction = &qapi.SyntaxError{Token: transactionOpen,
	Msg: `a transaction block is already open and blocks do not nest: end it with ")" first`}

// ErrUnclosedTransaction is the failure of input that ends inside a
// transaction block: its actions were not sent.
var ErrUnclosedTransaction = errors.New(`transaction( not closed with ")" before the end of input: its actions were not sent; end the block with a line ")"`)

// ErrRejectedTransaction is the failure of a transaction block, on a
// pipe, one of whose lines was rejected: none of its actions were sent.
var ErrRejectedTransaction = errors.New(`transaction not sent: a line of its block was rejected (see above), and a transaction is all actions or none; fix the line and run the whole block again`)

// command returns the "transaction" command with the collected actions,
// `{"actions": [{"type": TYPE, "data": {...}}, ...]}`, or nil while the
// block is still open.
func (t *transaction) command() *Command {
	if !t.done {
		return nil
	}
	// A fresh slice, so that a caller appending to it cannot reach ours;
	// never nil, so that an empty block marshals as [] rather than null.
	actions := make([]any, len(t.actions))
	copy(actions, t.actions)
	return &Command{Name: "transaction", Args: map[string]any{"actions": actions}}
}

// token is one word of a line after quote removal. quoted records whether
// any quoting or escaping went into it, because qmp-shell only recognises
// the block delimiters "transaction(" and ")" when typed bare.
type token struct {
	text   string
	quoted bool
}

func (t token) is(bare string) bool { return !t.quoted && t.text == bare }

func words(toks []token) []string {
	w := make([]string, len(toks))
	for i, t := range toks {
		w[i] = t.text
	}
	return w
}

// lexer splits a line into words. Quotes group and are removed as with
// Python's shlex.split (POSIX mode): '...' is literal, "..." honours \" and
// \\, and a backslash outside quotes escapes the next character. qmp-shell
// itself keeps quotes in the words, so `id="a b"` sends the string "\"a
// b\"" with its quotes, which nobody wants; removing them is a deliberate
// deviation.
//
// The exception is a value that starts with '{' or '[' right after the
// first '=' of a word: it is kept verbatim, quotes included, because they
// belong to the JSON (or Python literal) syntax, which is how qmp-shell
// users write `file={"driver":"file"}`. Such a value also extends over
// blanks until its brackets balance, so `opts={"a": 1}` is one word; in
// qmp-shell it must be typed without spaces.
type lexer struct {
	s   string
	pos int
	// word: s is one word already split by someone else (exec's
	// arguments), so blanks are part of it.
	word bool
}

func (l *lexer) rest() ([]token, error) {
	var toks []token
	for {
		t, ok, err := l.next()
		if err != nil || !ok {
			return toks, err
		}
		toks = append(toks, t)
	}
}

// next returns the next word; ok is false at the end of the line.
func (l *lexer) next() (tok token, ok bool, err error) {
	s := l.s
	for l.pos < len(s) && !l.word {
		r, size := utf8.DecodeRuneInString(s[l.pos:])
		if !unicode.IsSpace(r) {
			break
		}
		l.pos += size
	}
	if l.pos >= len(s) {
		return token{}, false, nil
	}
	start := l.pos
	unterminated := func(msg string) error {
		return &qapi.SyntaxError{Token: s[start:], Msg: msg}
	}
	var b strings.Builder
	quoted := false
	for l.pos < len(s) {
		r, size := utf8.DecodeRuneInString(s[l.pos:])
		if unicode.IsSpace(r) && !l.word {
			break
		}
		switch c := s[l.pos]; c {
		case '\\':
			quoted = true
			if l.pos+1 >= len(s) {
				return token{}, false, unterminated("backslash at end of line")
			}
			_, n := utf8.DecodeRuneInString(s[l.pos+1:])
			b.WriteString(s[l.pos+1 : l.pos+1+n])
			l.pos += 1 + n
		case '\'':
			quoted = true
			end := strings.IndexByte(s[l.pos+1:], '\'')
			if end < 0 {
				return token{}, false, unterminated("unterminated quote")
			}
			b.WriteString(s[l.pos+1 : l.pos+1+end])
			l.pos += end + 2
		case '"':
			quoted = true
			l.pos++
			for {
				if l.pos >= len(s) {
					return token{}, false, unterminated("unterminated quote")
				}
				c := s[l.pos]
				if c == '"' {
					l.pos++
					break
				}
				if c == '\\' && l.pos+1 < len(s) && (s[l.pos+1] == '"' || s[l.pos+1] == '\\') {
					b.WriteByte(s[l.pos+1])
					l.pos += 2
					continue
				}
				b.WriteByte(c)
				l.pos++
			}
		case '{', '[':
			if eq := strings.IndexByte(b.String(), '='); eq >= 0 && eq == b.Len()-1 {
				if err := l.verbatim(&b); err != nil {
					return token{}, false, unterminated(err.Error())
				}
				return token{text: b.String(), quoted: quoted}, true, nil
			}
			b.WriteByte(c)
			l.pos++
		default:
			b.WriteString(s[l.pos : l.pos+size])
			l.pos += size
		}
	}
	return token{text: b.String(), quoted: quoted}, true, nil
}

// verbatim copies a structured value up to the end of its word. Quoted
// strings are skipped with qmp-shell's rule (a backslash skips the next
// character) so that brackets and blanks inside them do not count.
func (l *lexer) verbatim(b *strings.Builder) error {
	s := l.s
	depth := 0
	for l.pos < len(s) {
		r, size := utf8.DecodeRuneInString(s[l.pos:])
		if unicode.IsSpace(r) && depth <= 0 && !l.word {
			return nil
		}
		switch c := s[l.pos]; c {
		case '"', '\'':
			j := l.pos + 1
			for {
				if j >= len(s) {
					return errors.New("unterminated quote")
				}
				if s[j] == '\\' {
					j += 2
					continue
				}
				j++
				if s[j-1] == c {
					break
				}
			}
			b.WriteString(s[l.pos:j])
			l.pos = j
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		}
		b.WriteString(s[l.pos : l.pos+size])
		l.pos += size
	}
	return nil
}
