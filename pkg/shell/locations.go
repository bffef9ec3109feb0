package shell

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// Some block drivers take their credentials inside a disk's location
// instead of as an option of their own, and QEMU repeats a location it
// cannot open in its error message, and gives it back in query-block: the
// patterns below find them.
var (
	// urlUserinfo is a URL's user information, scheme://USERINFO@. A
	// quote or white space ends it (a JSON string, a word), and so does
	// a backslash (an escape, decoded on another pass).
	urlUserinfo = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.-]*)://([^/?#@\s"\\]*)@`)
	})
	// rbdKey is the cephx key in Ceph's rbd: filename,
	// rbd:POOL/IMAGE:id=USER:key=KEY:conf=FILE.
	rbdKey = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?i)\brbd:[^\s"']*?:key=([^:\s"',\\]+)`)
	})
)

// LocationSecrets returns the secrets written into the disk locations s
// holds, as s spells them: the password of a URL's user information
// (https://USER:PASSWORD@HOST/..., and libiscsi's
// iscsi://USER%PASSWORD@HOST/...) and the key of an rbd:...:key=KEY. A
// location inside JSON is found through its escapes (https:\/\/...,
// \u0040, a json: filename's JSON inside a JSON string).
func LocationSecrets(s string) []string {
	var found []string
	for _, span := range locationSecrets(s) {
		if secret := s[span[0]:span[1]]; !slices.Contains(found, secret) {
			found = append(found, secret)
		}
	}
	return found
}

// HideLocationSecrets returns s with each of LocationSecrets replaced by
// hidden where it stands (https://alice:HIDDEN@host/...), and whether
// there was any.
func HideLocationSecrets(s, hidden string) (string, bool) {
	spans := locationSecrets(s)
	if len(spans) == 0 {
		return s, false
	}
	var b strings.Builder
	last := 0
	for _, span := range spans {
		if span[0] < last {
			continue // within one already hidden
		}
		b.WriteString(s[last:span[0]])
		b.WriteString(hidden)
		last = span[1]
	}
	b.WriteString(s[last:])
	return b.String(), true
}

// locationSecrets returns where in s its LocationSecrets are, by start.
// It looks at s as it stands, then, while it holds escapes that could
// hide a location, with one more level of JSON's escapes decoded.
func locationSecrets(s string) [][2]int {
	spans := plainLocationSecrets(s)
	d, at := s, []int(nil) // at[i]: where in s byte i of d comes from; nil while d is s
	for range 3 {
		if !strings.Contains(d, `\`) || !mayHideLocation(d) {
			break
		}
		// An escaped quote is part of a value at this level, and in
		// the text the next level decodes, the end of one: a json:
		// filename's strings within a string.
		for _, quote := range []byte{escapedQuote, '"'} {
			next, nextAt := unescapeJSON(d, quote)
			if at != nil {
				for i, j := range nextAt {
					nextAt[i] = at[j]
				}
			}
			if quote == escapedQuote {
				for _, span := range plainLocationSecrets(next) {
					spans = append(spans, [2]int{nextAt[span[0]], nextAt[span[1]]})
				}
				continue
			}
			d, at = next, nextAt
		}
	}
	slices.SortFunc(spans, func(a, b [2]int) int { return a[0] - b[0] })
	return slices.Compact(spans)
}

// plainLocationSecrets returns where in s its secrets are, escapes left
// as they are.
func plainLocationSecrets(s string) [][2]int {
	rbd := containsFold(s, "rbd:")
	if !rbd && !strings.Contains(s, "@") {
		return nil // most lines: no regular expression run
	}
	var spans [][2]int
	for _, m := range urlUserinfo().FindAllStringSubmatchIndex(s, -1) {
		sep := ":"
		if strings.EqualFold(s[m[2]:m[3]], "iscsi") {
			sep = "%" // libiscsi's own syntax; elsewhere % escapes
		}
		if i := strings.Index(s[m[4]:m[5]], sep); i >= 0 && m[4]+i+1 < m[5] {
			spans = append(spans, [2]int{m[4] + i + 1, m[5]})
		}
	}
	if rbd {
		for _, m := range rbdKey().FindAllStringSubmatchIndex(s, -1) {
			spans = append(spans, [2]int{m[2], m[3]})
		}
	}
	return spans
}

// mayHideLocation is a cheap look at s, which holds escapes: could
// decoding them show a location with a secret?
func mayHideLocation(s string) bool {
	return strings.Contains(s, "@") || containsFold(s, "rbd") || containsFold(s, `\u0040`)
}

// containsFold reports whether s contains sub, lower-case ASCII, in any
// case. Unlike a search in strings.ToLower(s), it copies nothing: the
// strings looked through may be a guest file's data, megabytes of it.
func containsFold(s, sub string) bool {
	first := string(sub[0])
	if c := sub[0]; 'a' <= c && c <= 'z' {
		first += string(c - 'a' + 'A')
	}
	for i := 0; i+len(sub) <= len(s); i++ {
		j := strings.IndexAny(s[i:], first)
		if j < 0 {
			return false
		}
		if i += j; i+len(sub) <= len(s) && strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// escapedQuote stands for an escaped quote where the patterns must not
// take it for the end of a value.
const escapedQuote = '\x01'

// unescapeJSON decodes one level of JSON's escapes in s, wherever they
// are (s may be a JSON text, or a string holding one, as a json:
// filename does), an escaped quote as quote. at[i] is where in s byte i
// of the result comes from, at[len(result)] is len(s). What is not a
// valid escape stays as it is.
func unescapeJSON(s string, quote byte) (string, []int) {
	b := make([]byte, 0, len(s))
	at := make([]int, 0, len(s)+1)
	for i := 0; i < len(s); {
		start, n := len(b), 1
		switch {
		case s[i] != '\\' || i+1 == len(s):
			b = append(b, s[i])
		case s[i+1] == 'u':
			r, size := decodeUEscape(s[i:])
			if size == 0 {
				b = append(b, s[i])
				break
			}
			b, n = utf8.AppendRune(b, r), size
		case s[i+1] == '"':
			b, n = append(b, quote), 2
		default:
			if c, ok := jsonSimpleEscape[s[i+1]]; ok {
				b, n = append(b, c), 2
			} else {
				b = append(b, s[i])
			}
		}
		for range len(b) - start {
			at = append(at, i)
		}
		i += n
	}
	return string(b), append(at, len(s))
}

var jsonSimpleEscape = map[byte]byte{'\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// decodeUEscape decodes the \uXXXX (a surrogate pair: two) s starts with,
// and returns the rune and how many bytes it took; 0 if it is none.
func decodeUEscape(s string) (rune, int) {
	hex := func(s string) (rune, bool) {
		if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
			return 0, false
		}
		v, err := strconv.ParseUint(s[2:6], 16, 16)
		return rune(v), err == nil
	}
	r, ok := hex(s)
	if !ok {
		return 0, 0
	}
	if utf16.IsSurrogate(r) {
		if r2, ok := hex(s[6:]); ok {
			if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
				return d, 12
			}
		}
	}
	return r, 6
}
