package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"github.com/qmpsh/qmpsh/pkg/wire"
	"sort"
	"strconv"
	"strings"
)

// request is a client's command, checked the way QEMU checks it.
type request struct {
	id      json.RawMessage // verbatim; nil when the client sent none
	command string
	oob     bool            // exec-oob rather than execute
	args    json.RawMessage // nil when absent
}

// qmpError is an error reply the proxy makes itself.
type qmpError struct {
	class, desc string
}

func genericError(desc string) *qmpError { return &qmpError{"GenericError", desc} }

// parseRequest decodes one value from a client. oobOK says whether the
// client negotiated oob. The error replies are QEMU 7.2's words, so that
// a client cannot tell the proxy from QEMU by its mistakes; the id, when
// one could be read, goes with the error.
func parseRequest(v []byte, oobOK bool) (*request, *qmpError) {
	orig := v
	v = standardJSON(v)
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(v, &obj); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, genericError("QMP input must be a JSON object")
		}
		if esc := badUnicodeEscape(orig); esc != "" && strings.Contains(err.Error(), `\u hexadecimal`) {
			return nil, genericError("JSON parse error, " + esc + " is not a valid Unicode character")
		}
		return nil, genericError("JSON parse error, " + parseProblem(v, err))
	}
	if obj == nil { // null
		return nil, genericError("QMP input must be a JSON object")
	}
	r := &request{id: obj["id"]}
	if why := beyondQEMU(v); why != "" {
		return r, genericError(why)
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		val := obj[k]
		switch k {
		case "execute", "exec-oob":
			if k == "exec-oob" && !oobOK {
				return r, genericError("QMP input member 'exec-oob' is unexpected")
			}
			if json.Unmarshal(val, &r.command) != nil {
				return r, genericError("QMP input member '" + k + "' must be a string")
			}
		case "arguments":
			if len(val) == 0 || val[0] != '{' {
				return r, genericError("QMP input member 'arguments' must be an object")
			}
			r.args = val
		case "id":
		default:
			return r, genericError("QMP input member '" + k + "' is unexpected")
		}
	}
	_, exec := obj["execute"]
	_, oob := obj["exec-oob"]
	switch {
	case exec && oob:
		return r, genericError("QMP input member 'execute' clashes with 'exec-oob'")
	case !exec && !oob:
		return r, genericError("QMP input lacks member 'execute'")
	}
	r.oob = oob
	return r, nil
}

// strayError is QEMU's error for a message a lexical error ended, which
// quotes the failed token as C prints it: up to a NUL byte.
func strayError(token []byte) *qmpError {
	if i := bytes.IndexByte(token, 0); i >= 0 {
		token = token[:i]
	}
	return genericError("JSON parse error, stray '" + string(token) + "'")
}

// badUnicodeEscape returns the first \u escape in v without four hex
// digits after it, as QEMU's error quotes it: six bytes from the
// backslash, or fewer where the string (its quote included) ends; "" if
// there is none. v is as the client sent it, quotes single or double.
func badUnicodeEscape(v []byte) string {
	var quote byte // of the string we are in; 0 outside strings
	bad := -1      // the backslash of a bad escape in this string
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case quote == 0:
			if c == '"' || c == '\'' {
				quote = c
			}
		case c == quote:
			if bad >= 0 {
				return string(v[bad:min(bad+6, i+1)])
			}
			quote = 0
		case c == '\\' && i+1 < len(v):
			if v[i+1] == 'u' && bad < 0 {
				for k := i + 2; k < i+6; k++ {
					if k >= len(v) || !isHex(v[k]) {
						bad = i
						break
					}
				}
			}
			i++
		}
	}
	if bad >= 0 {
		return string(v[bad:min(bad+6, len(v))])
	}
	return ""
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// standardJSON rewrites into JSON what QEMU's JSON parser takes beyond
// it: strings in single quotes ('query-status', common in scripts, where
// the shell's quoting makes double quotes awkward) and the escape \' in
// a string of either kind. A single-quoted string becomes the
// double-quoted one QEMU would write back. v is one value as frameReader
// splits it; without a single quote in it, v itself is returned.
func standardJSON(v []byte) []byte {
	if bytes.IndexByte(v, '\'') < 0 {
		return v
	}
	out := make([]byte, 0, len(v)+8)
	for i := 0; i < len(v); i++ {
		quote := v[i]
		if quote != '"' && quote != '\'' {
			out = append(out, quote)
			continue
		}
		out = append(out, '"')
		for i++; i < len(v) && v[i] != quote; i++ {
			switch c := v[i]; {
			case c == '\\' && i+1 < len(v):
				i++
				if v[i] == '\'' {
					out = append(out, '\'')
				} else {
					out = append(out, '\\', v[i])
				}
			case c == '"': // in single quotes
				out = append(out, '\\', '"')
			default:
				out = append(out, c)
			}
		}
		if i < len(v) {
			out = append(out, '"')
		}
	}
	return out
}

// QEMU's JSON streamer's limits on one message (see wire.MaxTokens). A
// message's size is bounded by Config.MaxMessageSize, well below QEMU's
// 64 MiB.
const (
	maxTokens  = wire.MaxTokens
	maxNesting = wire.MaxNesting
)

// beyondQEMU says why QEMU would not take v, valid JSON to Go, as the
// one request it is, or "" if it would (wire.QEMURefuses), counting the
// four tokens of the id the proxy adds. QEMU answers such a request with
// an error that has no id, which the proxy could not route (the client
// would wait for ever); worse, past a limit or an invalid byte QEMU's
// parser starts over in the middle of the message, so that what follows
// runs as requests of their own: through a --read-only proxy, any
// command hidden there.
func beyondQEMU(v []byte) string { return wire.QEMURefuses(v, 4) }

// parseProblem describes what is wrong with v, which is not JSON, in
// the manner of QEMU's parser.
func parseProblem(v []byte, err error) string {
	switch c := v[0]; {
	case c == '}' || c == ']' || c == ',' || c == ':':
		return "expecting value"
	case c != '{' && c != '[' && c != '"' && c != '-' && (c < '0' || c > '9'):
		return "invalid keyword '" + string(v) + "'"
	}
	// Within a value, Go's scanner names the byte it stopped at; QEMU's
	// parser names what it expected there.
	var se *json.SyntaxError
	if errors.As(err, &se) && se.Offset > 0 && int(se.Offset) <= len(v) {
		at := int(se.Offset) - 1 // the offending byte
		msg := se.Error()
		switch {
		case strings.HasSuffix(msg, "looking for beginning of value"):
			return "expecting value"
		case strings.HasSuffix(msg, "looking for beginning of object key string"):
			if v[at] == '}' || v[at] == ']' {
				return "expecting value"
			}
			return "key is not a string in object"
		case strings.HasSuffix(msg, "after object key"):
			return "missing : in object pair"
		case strings.HasSuffix(msg, "after object key:value pair"):
			return "expected separator in dict"
		case strings.HasSuffix(msg, "after array element"):
			return "expected separator in list"
		case strings.HasSuffix(msg, "in string escape code"):
			return "invalid escape sequence in string"
		case strings.Contains(msg, " in literal "):
			// QEMU's lexer read a keyword up to the offending byte.
			start := at
			for start > 0 && v[start-1] >= 'a' && v[start-1] <= 'z' {
				start--
			}
			if start < at {
				return "invalid keyword '" + string(v[start:at]) + "'"
			}
		}
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// negotiate answers qmp_capabilities in the capabilities phase: the
// capabilities the client enables, which must be among those offered.
func negotiate(args json.RawMessage, offered []string) (oob bool, _ *qmpError) {
	if args == nil {
		return false, nil
	}
	var a map[string]json.RawMessage
	if err := json.Unmarshal(args, &a); err != nil {
		return false, genericError("Invalid parameter type, expected: object")
	}
	for k, v := range a {
		if k != "enable" {
			return false, genericError("Parameter '" + k + "' is unexpected")
		}
		var caps []string
		if json.Unmarshal(v, &caps) != nil {
			return false, genericError("Invalid parameter type for 'enable', expected: array")
		}
		for _, c := range caps {
			if c != "oob" {
				return false, genericError("Parameter 'enable' does not accept value '" + c + "'")
			}
			found := false
			for _, o := range offered {
				found = found || o == c
			}
			if !found {
				return false, genericError("This monitor does not support Out-Of-Band (OOB)")
			}
			oob = true
		}
	}
	return oob, nil
}

// appendError appends an error reply, with id when not nil.
func appendError(b []byte, id json.RawMessage, e *qmpError) []byte {
	b = append(b, `{"error": {"class": `...)
	b = strconv.AppendQuote(b, e.class)
	b = append(b, `, "desc": `...)
	cls, _ := json.Marshal(e.desc) // JSON, not Go, escapes
	b = append(b, cls...)
	b = append(b, '}')
	if id != nil {
		b = append(b, `, "id": `...)
		b = append(b, id...)
	}
	return append(b, '}')
}

// appendReturn appends {"return": {}}, with id when not nil.
func appendEmptyReturn(b []byte, id json.RawMessage) []byte {
	b = append(b, `{"return": {}`...)
	if id != nil {
		b = append(b, `, "id": `...)
		b = append(b, id...)
	}
	return append(b, '}')
}

// appendUpstream appends the request as the proxy sends it to QEMU,
// under the proxy's own id, or without one when id is 0.
func appendUpstream(b []byte, r *request, id uint64) []byte {
	if r.oob {
		b = append(b, `{"exec-oob":`...)
	} else {
		b = append(b, `{"execute":`...)
	}
	name, _ := json.Marshal(r.command)
	b = append(b, name...)
	if r.args != nil {
		b = append(b, `,"arguments":`...)
		b = append(b, r.args...)
	}
	if id != 0 {
		b = append(b, `,"id":`...)
		b = strconv.AppendUint(b, id, 10)
	}
	return append(b, '}')
}

// appendID returns msg, a reply QEMU sent without an id, with id added
// as QEMU would have written it; msg itself when id is nil.
func appendID(msg []byte, id json.RawMessage) []byte {
	end := bytes.LastIndexByte(msg, '}')
	if id == nil || end < 0 {
		return msg
	}
	out := make([]byte, 0, len(msg)+len(id)+8)
	out = append(out, msg[:end]...)
	out = append(out, `, "id": `...)
	out = append(out, id...)
	return append(out, msg[end:]...)
}
