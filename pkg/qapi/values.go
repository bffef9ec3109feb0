package qapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"unicode"
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

// JSON kinds, to match an alternate's branches: QEMU picks the branch by
// the JSON type of the value.
const (
	kindAny = iota
	kindString
	kindNumber
	kindBool
	kindNull
	kindObject
	kindArray
)

func (s *Schema) jsonKind(si *SchemaInfo) int {
	switch si.MetaType {
	case "enum":
		return kindString
	case "object":
		return kindObject
	case "array":
		return kindArray
	case "builtin":
		switch si.JSONType {
		case "string":
			return kindString
		case "int", "number":
			return kindNumber
		case "boolean":
			return kindBool
		case "null":
			return kindNull
		}
	}
	return kindAny
}

func kindOfValue(v any) int {
	switch v.(type) {
	case string:
		return kindString
	case int64, uint64, float64:
		return kindNumber
	case bool:
		return kindBool
	case nil:
		return kindNull
	case map[string]any:
		return kindObject
	case []any:
		return kindArray
	}
	return kindAny
}

// kind describes a type in a few words, "a string", "an integer or a
// boolean".
func (s *Schema) kind(si *SchemaInfo) string {
	switch si.MetaType {
	case "builtin":
		switch si.JSONType {
		case "string":
			return "a string"
		case "int":
			return "an integer"
		case "number":
			return "a number"
		case "boolean":
			return "a boolean"
		case "null":
			return "null"
		}
		return "a JSON value"
	case "enum":
		return "one of " + strings.Join(enumValues(si), ", ")
	case "array":
		return "an array"
	case "object":
		return "an object"
	case "alternate":
		var parts []string
		for _, m := range si.Members {
			if b := s.types[m.Type]; b != nil {
				k := s.kind(b)
				if b.MetaType == "enum" {
					k = "an enum value"
				}
				parts = append(parts, k)
			}
		}
		return joinOr(parts)
	}
	return "a JSON value"
}

func joinOr(parts []string) string {
	switch len(parts) {
	case 0:
		return "a JSON value"
	case 1:
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " or " + parts[len(parts)-1]
}

// parseBool accepts true/false and, when all is set, on/off and yes/no,
// in any case.
func parseBool(s string, all bool) (bool, bool) {
	switch strings.ToLower(s) {
	case "true":
		return true, true
	case "false":
		return false, true
	case "on", "yes":
		return true, all
	case "off", "no":
		return false, all
	}
	return false, false
}

var errRange = errors.New("out of range")

// parseInteger parses an integer for the schema's int type: see Build.
// The result is an int64, or a uint64 above math.MaxInt64.
func parseInteger(s string) (any, error) {
	neg := false
	t := s
	if t != "" && (t[0] == '+' || t[0] == '-') {
		neg = t[0] == '-'
		t = t[1:]
	}
	base := 10
	if len(t) > 2 && t[0] == '0' {
		switch t[1] {
		case 'x', 'X':
			base = 16
		case 'o', 'O':
			base = 8
		case 'b', 'B':
			base = 2
		}
		if base != 10 {
			t = t[2:]
		}
	}
	var shift uint
	if base == 10 && len(t) > 1 {
		if i := strings.IndexByte("KMGTPE", byte(unicode.ToUpper(rune(t[len(t)-1])))); i >= 0 {
			shift = 10 * uint(i+1)
			t = t[:len(t)-1]
		}
	}
	if base == 10 && !isPyInt(t) || t == "" || t[0] == '+' || t[0] == '-' {
		return nil, errors.New("not an integer")
	}
	t = strings.ReplaceAll(t, "_", "")
	u, err := strconv.ParseUint(t, base, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return nil, errRange
		}
		return nil, err
	}
	if shift > 0 {
		if u > math.MaxUint64>>shift {
			return nil, errRange
		}
		u <<= shift
	}
	if neg {
		if u > 1<<63 {
			return nil, errRange
		}
		return -int64(u), nil // wraps correctly for 1<<63
	}
	if u > math.MaxInt64 {
		return u, nil
	}
	return int64(u), nil
}
