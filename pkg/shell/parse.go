package shell

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Command is one parsed QMP command line.
type Command struct {
	// Name is the QMP command name, e.g. "blockdev-add".
	Name string
	// Args holds the command arguments; it is nil when there are none.
	// Values are string, bool, int64, uint64, float64, nil, []any and
	// map[string]any, all of which encoding/json writes as expected.
	Args map[string]any
	// Raw is set instead of Name and Args when the line was raw JSON. It
	// holds the line's JSON object, compacted (insignificant whitespace
	// removed, member order and everything else kept as typed).
	Raw []byte
}

// command returns the name of the command c executes, raw or not ("" if
// a raw message names none).
func (c *Command) command() string {
	if c.Raw == nil {
		return c.Name
	}
	var m struct{ Execute string }
	json.Unmarshal(c.Raw, &m)
	return m.Execute
}

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

// ParseLine parses one line: `command key=value ...`, or a raw JSON object
// when the trimmed line starts with '{'. It returns (nil, nil) for an empty
// line or a comment (a line whose first non-blank character is '#'), so
// that a read-eval-print loop can skip it. A complete one-line transaction
// block, `transaction( type key=value ... )`, is accepted too; a block
// spanning several lines must go through a Transaction. Every error is a
// *SyntaxError.
func ParseLine(line string) (*Command, error) {
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
	if first.is(transactionOpen) {
		var t Transaction
		done, err := t.Add(line)
		if err != nil {
			return nil, err
		}
		if !done {
			return nil, &SyntaxError{Token: transactionOpen, Msg: `transaction block is not closed by ")" on this line`}
		}
		return t.Command(), nil
	}
	if err := checkName(first.text, "a command name"); err != nil {
		return nil, err
	}
	rest, err := lx.rest()
	if err != nil {
		return nil, err
	}
	args, err := parseArgs(words(rest))
	if err != nil {
		return nil, err
	}
	return &Command{Name: first.text, Args: args}, nil
}

// ParseArgs parses only key=value tokens, for callers whose arguments were
// already split into words, such as `qmpsh exec COMMAND key=value...`
// where the operating system's shell did the splitting. Each token is taken
// as it is, without another round of quote removal, so `file={"a": 1}` in
// one argv word is one JSON value. It returns nil when tokens is empty.
// Every error is a *SyntaxError.
func ParseArgs(tokens []string) (map[string]any, error) {
	return parseArgs(tokens)
}

// KeyValue is one key=value argument as typed, split at its first '=' but
// with the value not interpreted yet: Schema.Build types it from the
// schema. Key may be dotted ("file.filename").
type KeyValue struct {
	Key   string
	Value string
}

// SplitLine splits a command line into its command name and raw key=value
// arguments, with the same word syntax, quote removal and errors as
// ParseLine, but without guessing the values' types. It does not treat
// raw JSON or transaction blocks specially: callers check for those first
// (a line starting with '{' is not a command line, and "transaction(" is
// returned as a name). It returns an empty name and no arguments for an
// empty line or a comment. Every error is a *SyntaxError.
func SplitLine(line string) (name string, args []KeyValue, err error) {
	trimmed := strings.TrimSpace(line)
	if trimmed == "" || trimmed[0] == '#' {
		return "", nil, nil
	}
	lx := lexer{s: line}
	first, _, err := lx.next()
	if err != nil {
		return "", nil, err
	}
	if err := checkName(first.text, "a command name"); err != nil {
		return "", nil, err
	}
	rest, err := lx.rest()
	if err != nil {
		return "", nil, err
	}
	args, err = SplitArgs(words(rest))
	if err != nil {
		return "", nil, err
	}
	return first.text, args, nil
}

// SplitArgs splits already separated key=value words, such as the
// arguments of `qmpsh exec`, like ParseArgs but without guessing the
// values' types. It returns nil when tokens is empty. Every error is a
// *SyntaxError.
func SplitArgs(tokens []string) ([]KeyValue, error) {
	if len(tokens) == 0 {
		return nil, nil
	}
	kvs := make([]KeyValue, 0, len(tokens))
	for _, w := range tokens {
		key, val, err := splitWord(w)
		if err != nil {
			return nil, err
		}
		kvs = append(kvs, KeyValue{Key: key, Value: val})
	}
	return kvs, nil
}

// splitWord splits a key=value word at its first '='.
func splitWord(w string) (key, val string, err error) {
	key, val, ok := strings.Cut(w, "=")
	if !ok {
		return "", "", &SyntaxError{Token: w, Msg: "expected key=value"}
	}
	if key == "" {
		return "", "", &SyntaxError{Token: w, Msg: `expected key=value, the key before "=" is empty`}
	}
	return key, val, nil
}

// parseRaw checks that s is exactly one JSON object; s starts with '{', so
// json.Valid (which rejects trailing data) is enough to know that.
func parseRaw(s string) (*Command, error) {
	b := []byte(s)
	if !json.Valid(b) {
		var v any
		msg := "invalid JSON object"
		if err := json.Unmarshal(b, &v); err != nil {
			msg += ": " + err.Error()
		}
		return nil, &SyntaxError{Token: s, Msg: msg}
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, &SyntaxError{Token: s, Msg: "invalid JSON object: " + err.Error()}
	}
	return &Command{Raw: buf.Bytes()}, nil
}

// checkName rejects names QEMU can never accept and that point at a typing
// mistake: an empty word or a key=value pair where a name belongs.
func checkName(name, what string) error {
	if name == "" || strings.Contains(name, "=") {
		return &SyntaxError{Token: name, Msg: "expected " + what}
	}
	return nil
}

// parseArgs parses key=value words into a fresh object, nil for no words.
func parseArgs(words []string) (map[string]any, error) {
	if len(words) == 0 {
		return nil, nil
	}
	args := make(map[string]any, len(words))
	if err := addArgs(args, words); err != nil {
		return nil, err
	}
	return args, nil
}

// addArgs follows qmp-shell's _cli_expr: split at the first '=', guess the
// value's type, and store it under the dotted key path.
func addArgs(dst map[string]any, words []string) error {
	for _, w := range words {
		key, val, err := splitWord(w)
		if err != nil {
			return err
		}
		v, err := parseValue(key, val)
		if err != nil {
			return err
		}
		if err := setPath(dst, key, v); err != nil {
			return err
		}
	}
	return nil
}

// setPath stores v at the dotted key. qmp-shell lets a later dotted key
// descend into an object given earlier as a JSON value (`a={"b":1} a.c=2`),
// so any existing object is a valid parent; only the reverse order and
// scalars are conflicts. Unlike qmp-shell, empty segments are rejected:
// QMP member names are never empty, so `a..b` can only be a typo.
func setPath(dst map[string]any, key string, v any) error {
	segs := strings.Split(key, ".")
	for _, s := range segs {
		if s == "" {
			return &SyntaxError{Token: key, Msg: "empty segment in dotted key"}
		}
	}
	m := dst
	for i, s := range segs[:len(segs)-1] {
		old, ok := m[s]
		if !ok {
			child := map[string]any{}
			m[s] = child
			m = child
			continue
		}
		child, isObj := old.(map[string]any)
		if !isObj {
			return conflict(key, segs[:i+1])
		}
		m = child
	}
	last := segs[len(segs)-1]
	if old, ok := m[last]; ok {
		if _, isObj := old.(map[string]any); isObj {
			return conflict(key, segs)
		}
		return &SyntaxError{Token: key, Msg: "key is set more than once"}
	}
	m[last] = v
	return nil
}

func conflict(key string, path []string) error {
	return &SyntaxError{
		Token: key,
		Msg:   strconv.Quote(strings.Join(path, ".")) + " is used both as a value and as an object",
	}
}

// parseValue guesses a value's type in qmp-shell's order (_parse_value):
// Python int(), then case-insensitive true/false, then JSON or a Python
// literal for text starting with '{' or '['; anything else is a string.
// Floats and null are therefore strings unless inside a JSON value, as in
// qmp-shell. Deviations: a malformed '{'/'[' value is an error instead of
// silently becoming a string, and an integer outside the int64 and uint64
// ranges is an error instead of a value QEMU would turn into a float.
func parseValue(key, val string) (any, error) {
	if isPyInt(val) {
		digits := strings.ReplaceAll(strings.TrimPrefix(val, "+"), "_", "")
		if n, err := strconv.ParseInt(digits, 10, 64); err == nil {
			return n, nil
		}
		// QMP has uint64 members (sizes, bandwidths) above MaxInt64.
		if n, err := strconv.ParseUint(digits, 10, 64); err == nil {
			return n, nil
		}
		return nil, &SyntaxError{Token: key, Msg: "integer " + val + " is out of range"}
	}
	if strings.EqualFold(val, "true") {
		return true, nil
	}
	if strings.EqualFold(val, "false") {
		return false, nil
	}
	if strings.HasPrefix(val, "{") || strings.HasPrefix(val, "[") {
		v, err := parseStructured(val)
		if err != nil {
			return nil, &SyntaxError{Token: key, Msg: "invalid JSON value: " + err.Error()}
		}
		return v, nil
	}
	return val, nil
}

// isPyInt reports whether Python's int() accepts s as a decimal integer:
// an optional sign, ASCII digits, and single underscores between digits.
// Python also accepts surrounding blanks and non-ASCII digits; blanks can
// only come from quotes here, which the user typed to make a string, and
// non-ASCII digits are not worth the surprise.
func isPyInt(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	prevDigit := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			prevDigit = true
		case c == '_' && prevDigit && i+1 < len(s):
			prevDigit = false
		default:
			return false
		}
	}
	return prevDigit
}

// parseStructured parses JSON first and falls back, as qmp-shell does, to
// the Python literal subset with JSON's true/false/null also allowed.
func parseStructured(s string) (any, error) {
	b := []byte(s)
	if !json.Valid(b) {
		js, err := pyToJSON(s)
		if err != nil {
			return nil, err
		}
		b = []byte(js)
		if !json.Valid(b) {
			var v any
			if err := json.Unmarshal(b, &v); err != nil {
				return nil, err
			}
			return nil, errors.New("not a JSON value")
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	// UseNumber keeps integers exact; float64 would round above 2^53.
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return convertNumbers(v)
}

// convertNumbers replaces json.Number by the concrete types the top level
// uses for integers, so callers see one representation.
func convertNumbers(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n, nil
		}
		if n, err := strconv.ParseUint(s, 10, 64); err == nil {
			return n, nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, errors.New("number " + s + " is out of range")
		}
		return f, nil
	case map[string]any:
		for k, e := range x {
			c, err := convertNumbers(e)
			if err != nil {
				return nil, err
			}
			x[k] = c
		}
	case []any:
		for i, e := range x {
			c, err := convertNumbers(e)
			if err != nil {
				return nil, err
			}
			x[i] = c
		}
	}
	return v, nil
}

// pyToJSON rewrites the Python literal subset that qmp-shell evaluates with
// ast.literal_eval into JSON: single- or double-quoted strings with Python
// escapes, True/False/None (and, like qmp-shell's FuzzyJSON, true/false/
// null), and trailing commas. Tuples, sets, non-string keys and Python-only
// number forms (0x10, 1_000) are not supported; the JSON decoder rejects
// what is left over.
func pyToJSON(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\'':
			str, n, err := readPyString(s[i:])
			if err != nil {
				return "", err
			}
			enc, _ := json.Marshal(str) // a string always encodes
			b.Write(enc)
			i += n
		case c >= '0' && c <= '9':
			// Copy a whole number so that an exponent's 'e' is not taken
			// for a name.
			j := i + 1
			for j < len(s) && (isIdentByte(s[j]) || s[j] == '.' ||
				(s[j] == '+' || s[j] == '-') && (s[j-1] == 'e' || s[j-1] == 'E')) {
				j++
			}
			b.WriteString(s[i:j])
			i = j
		case isIdentByte(c):
			j := i + 1
			for j < len(s) && isIdentByte(s[j]) {
				j++
			}
			switch name := s[i:j]; name {
			case "True", "true":
				b.WriteString("true")
			case "False", "false":
				b.WriteString("false")
			case "None", "null":
				b.WriteString("null")
			default:
				return "", errors.New("unknown name " + strconv.Quote(name))
			}
			i = j
		case c == ',':
			j := i + 1
			for j < len(s) && isJSONSpace(s[j]) {
				j++
			}
			if j == len(s) || (s[j] != ']' && s[j] != '}') {
				b.WriteByte(',')
			}
			i++
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), nil
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isJSONSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// readPyString decodes the Python string literal at the start of s and
// returns it with the number of bytes it took.
func readPyString(s string) (string, int, error) {
	q := s[0]
	var b strings.Builder
	for i := 1; i < len(s); {
		c := s[i]
		if c == q {
			return b.String(), i + 1, nil
		}
		if c != '\\' {
			b.WriteByte(c)
			i++
			continue
		}
		if i+1 >= len(s) {
			break
		}
		e := s[i+1]
		i += 2
		switch e {
		case '\\', '\'', '"':
			b.WriteByte(e)
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'a':
			b.WriteByte('\a')
		case 'v':
			b.WriteByte('\v')
		case 'x', 'u', 'U':
			width := 2
			switch e {
			case 'u':
				width = 4
			case 'U':
				width = 8
			}
			if i+width > len(s) {
				return "", 0, errors.New(`truncated \` + string(e) + " escape in string")
			}
			n, err := strconv.ParseUint(s[i:i+width], 16, 32)
			if err != nil || n > unicode.MaxRune {
				return "", 0, errors.New(`bad \` + string(e) + " escape in string")
			}
			b.WriteRune(rune(n))
			i += width
		case '0', '1', '2', '3', '4', '5', '6', '7':
			n := uint64(e - '0')
			for k := 0; k < 2 && i < len(s) && s[i] >= '0' && s[i] <= '7'; k++ {
				n = n*8 + uint64(s[i]-'0')
				i++
			}
			b.WriteRune(rune(n))
		default:
			// Python keeps unknown escapes as typed.
			b.WriteByte('\\')
			b.WriteByte(e)
		}
	}
	return "", 0, errors.New("unterminated string")
}

// transactionOpen and transactionClose are the bare words that delimit a
// qmp-shell transaction block.
const (
	transactionOpen  = "transaction("
	transactionClose = ")"
)

// StartsTransaction reports whether line opens a transaction block, that
// is whether its first word is an unquoted "transaction(" as in qmp-shell.
// The rest of the line is not examined; Transaction.Add reports its errors.
func StartsTransaction(line string) bool {
	lx := lexer{s: line}
	tok, ok, err := lx.next()
	return err == nil && ok && tok.is(transactionOpen)
}

// Transaction collects the actions of a qmp-shell style `transaction(`
// block:
//
//	transaction(
//	block-dirty-bitmap-add node=drive0 name=bitmap1
//	block-dirty-bitmap-clear node=drive0 name=bitmap0
//	)
//
// Feed it every line of the block, the opening line included. The zero
// value is ready to use and also accepts a block whose opening line was
// consumed elsewhere.
type Transaction struct {
	actions []any
	done    bool
}

// Add feeds one more line of the block. It follows qmp-shell: a leading
// "transaction(" word opens the block (again, dropping earlier actions, if
// it reappears); words after it on the same line are the first action; a
// line whose first word is ")" closes the block; otherwise the line is one
// action, `type key=value ...`, and a last word ")" closes the block after
// it. Empty lines and comments are skipped. done is true once the block is
// closed, and Command then returns the transaction.
//
// A line in error is rejected as a whole and the block stays open, so the
// user can type it again. qmp-shell does the same, except that it abandons
// the block on `) extra words`; here that line is rejected like any other.
// Raw JSON lines are not allowed inside a block. Adding to a closed block
// is an error and leaves done true; a new block needs a new Transaction.
func (t *Transaction) Add(line string) (done bool, err error) {
	return t.add(line, guessArgs)
}

// guessArgs builds an action's data with qmp-shell's value guessing.
func guessArgs(_ string, words []string) (map[string]any, error) {
	data := map[string]any{}
	if err := addArgs(data, words); err != nil {
		return nil, err
	}
	return data, nil
}

// add is Add with the action's data built by build from the action type
// and its key=value words; build never returns a nil map without error.
func (t *Transaction) add(line string, build func(typ string, words []string) (map[string]any, error)) (done bool, err error) {
	if t.done {
		return true, errors.New("transaction block is already closed")
	}
	trimmed := strings.TrimSpace(line)
	if trimmed == "" || trimmed[0] == '#' {
		return false, nil
	}
	if trimmed[0] == '{' {
		return false, &SyntaxError{Token: trimmed, Msg: "raw JSON is not allowed in a transaction block"}
	}
	lx := lexer{s: line}
	toks, err := lx.rest()
	if err != nil {
		return false, err
	}
	reopened := false
	if len(toks) > 0 && toks[0].is(transactionOpen) {
		reopened = true
		toks = toks[1:]
	}
	if len(toks) > 0 && toks[0].is(transactionClose) {
		if len(toks) > 1 {
			return false, &SyntaxError{Token: toks[1].text, Msg: `unexpected input after the closing ")" of a transaction`}
		}
		if reopened {
			t.actions = nil
		}
		t.done = true
		return true, nil
	}
	if len(toks) == 0 {
		if reopened {
			t.actions = nil
		}
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
	data, err := build(typ, words(toks[1:]))
	if err != nil {
		return false, err
	}
	if reopened {
		t.actions = nil
	}
	t.actions = append(t.actions, map[string]any{"type": typ, "data": data})
	t.done = closing
	return closing, nil
}

// Command returns the "transaction" command with the collected actions,
// `{"actions": [{"type": TYPE, "data": {...}}, ...]}`, or nil while the
// block is still open.
func (t *Transaction) Command() *Command {
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
	for l.pos < len(s) {
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
		return &SyntaxError{Token: s[start:], Msg: msg}
	}
	var b strings.Builder
	quoted := false
	for l.pos < len(s) {
		r, size := utf8.DecodeRuneInString(s[l.pos:])
		if unicode.IsSpace(r) {
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
		if unicode.IsSpace(r) && depth <= 0 {
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
