package shell

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Printable returns s, text from the server (a string QEMU returned, an
// event's or a schema entry's name, an error's description, the
// greeting's version), made safe to show a person: a control character
// other than newline and tab, and any other rune that is not printable
// (C1 controls such as CSI, bidi overrides), is shown as its Go escape
// (\x1b, \u009b), and a byte that is not UTF-8 as \xNN. Otherwise a
// server could send terminal escape sequences that retitle the window,
// clear the screen or redefine keys. JSON output needs none of this:
// it escapes control characters itself.
func Printable(s string) string {
	if isPrintable(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n' || r == '\t' || strconv.IsPrint(r):
			b.WriteString(s[i : i+size])
		default:
			q := strconv.QuoteRuneToASCII(r) // '\x1b', '\u009b'
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

// isPrintable tells whether Printable would return s as it is (U+FFFD
// aside, which the slow path tells from invalid UTF-8), without
// allocating: the common case.
func isPrintable(s string) bool {
	for _, r := range s {
		if !(r == '\n' || r == '\t' || r != utf8.RuneError && strconv.IsPrint(r)) {
			return false
		}
	}
	return true
}

// Typable tells whether a name from the server may be offered by Tab
// completion: printable, without the escapes Printable would spell out
// (the terminal shows what completion inserts or lists) and without
// blanks or newlines, which no QMP name has and which would split the
// line being completed, or a candidate of a shell's completion protocol
// (one per line, a tab before its description).
func Typable(s string) bool {
	return isPrintable(s) && !strings.ContainsAny(s, " \t\n")
}
