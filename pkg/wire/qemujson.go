package wire

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// QEMU's JSON streamer takes a message of at most MaxTokens tokens,
// nested at most MaxNesting deep (braces and brackets together), whose
// tokens add up to at most MaxTokenBytes; see MAX_TOKEN_COUNT,
// MAX_NESTING and MAX_TOKEN_SIZE in QEMU's qobject/json-streamer.c.
const (
	MaxTokens     = 2 << 20
	MaxNesting    = 1 << 10
	MaxTokenBytes = 64 << 20
)

// QEMURefuses says why QEMU would not take v, valid JSON to Go, as the
// one message it is, or "" if it would. extraTokens are the tokens the
// sender will add (,"id":N is four). QEMU answers such a message with an
// error that has no id, one per piece it makes of it: a client cannot
// tell which request failed, and past a limit or an invalid byte QEMU's
// parser starts over in the middle of the message, so that what follows
// runs as requests of their own. What QEMU 7.2 refuses that Go's parser
// takes: an invalid UTF-8 sequence, a code point that is a surrogate or
// a noncharacter, raw or escaped, a key twice in one object, a number
// with an exponent after a lone zero (0e5), and nesting or a token count
// beyond its streamer's limits, or a message longer than MaxTokenBytes.
// The reasons are QEMU's words.
func QEMURefuses(v []byte, extraTokens int) string {
	// The bytes of its tokens, counted here with the spaces between
	// them, and 20 for each added token (an id's digits at most).
	if len(v)+20*extraTokens > MaxTokenBytes {
		return "JSON token size limit exceeded"
	}
	if !utf8.Valid(v) {
		return "JSON parse error, invalid UTF-8 sequence in string"
	}
	type container struct {
		keys    map[string]bool // nil in an array
		wantKey bool            // the next string is a key
	}
	var stack []container
	tokens := 0
	inScalar := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '"' {
			end, why := endOfString(v, i)
			if why != "" {
				return why
			}
			if n := len(stack); n > 0 && stack[n-1].wantKey {
				var key string
				json.Unmarshal(v[i:end], &key) // valid: Go has parsed v
				if stack[n-1].keys[key] {
					return "JSON parse error, duplicate key"
				}
				stack[n-1].keys[key], stack[n-1].wantKey = true, false
			}
			tokens++
			inScalar = false
			i = end - 1
		} else {
			switch c {
			case '{', '[':
				if len(stack) == MaxNesting {
					return "JSON nesting depth limit exceeded"
				}
				if c == '{' {
					stack = append(stack, container{keys: map[string]bool{}, wantKey: true})
				} else {
					stack = append(stack, container{})
				}
			case '}', ']':
				stack = stack[:len(stack)-1]
			case ',':
				if n := len(stack); n > 0 && stack[n-1].keys != nil {
					stack[n-1].wantKey = true
				}
			}
			switch c {
			case '{', '[', '}', ']', ',', ':':
				tokens++
				inScalar = false
			case ' ', '\t', '\n', '\r':
				inScalar = false
			default: // a number or a keyword, one token however long
				if !inScalar {
					if loneZeroExponent(v[i:]) {
						// 0e5 is JSON, and three tokens to QEMU's lexer
						// (0, e, 5): a parse error, and a token count
						// that is not the one counted here.
						if n := len(stack); n > 0 && stack[n-1].keys == nil {
							return "JSON parse error, expected separator in list"
						}
						return "JSON parse error, expected separator in dict"
					}
					tokens++
					inScalar = true
				}
			}
		}
		if tokens > MaxTokens-extraTokens {
			return "JSON token count limit exceeded"
		}
	}
	return ""
}

// loneZeroExponent reports whether the number v starts with has an
// exponent right after a whole part of a lone zero (0e5, -0e5), which
// QEMU's lexer does not read as one number.
func loneZeroExponent(v []byte) bool {
	if len(v) > 0 && v[0] == '-' {
		v = v[1:]
	}
	return len(v) > 1 && v[0] == '0' && (v[1] == 'e' || v[1] == 'E')
}

// endOfString returns the index just past the string that starts at
// v[i], or why QEMU would refuse a code point in it.
func endOfString(v []byte, i int) (int, string) {
	for i++; i < len(v); {
		switch c := v[i]; {
		case c == '"':
			return i + 1, ""
		case c == '\\' && v[i+1] == 'u':
			cp, n := hex4(v[i+2:]), 6
			if 0xD800 <= cp && cp < 0xDC00 && i+11 < len(v) && v[i+6] == '\\' && v[i+7] == 'u' {
				if lo := hex4(v[i+8:]); 0xDC00 <= lo && lo < 0xE000 {
					cp, n = 0x10000+(cp-0xD800)<<10+(lo-0xDC00), 12
				}
			}
			if !qemuCodePoint(cp) {
				return 0, "JSON parse error, " + string(v[i:i+6]) + " is not a valid Unicode character"
			}
			i += n
		case c == '\\':
			i += 2
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(v[i:])
			if !qemuCodePoint(r) {
				return 0, "JSON parse error, invalid UTF-8 sequence in string"
			}
			i += n
		default:
			i++
		}
	}
	return len(v), ""
}

func hex4(b []byte) rune {
	n, _ := strconv.ParseUint(string(b[:4]), 16, 32)
	return rune(n)
}

// qemuCodePoint reports whether QEMU takes code point r in a string: not
// a surrogate (one alone, escaped) nor a noncharacter.
func qemuCodePoint(r rune) bool {
	switch {
	case 0xD800 <= r && r < 0xE000, 0xFDD0 <= r && r <= 0xFDEF, r&0xFFFE == 0xFFFE:
		return false
	}
	return true
}
