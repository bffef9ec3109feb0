package shell

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"github.com/fatih/color"
	"github.com/tidwall/pretty"

	"github.com/qmpsh/qmpsh/pkg/qmp"
)

// Format is how results, errors and events are written.
type Format struct {
	Pretty bool // indented JSON; otherwise one compact line
	Color  bool // ANSI colours
}

// JSON renders a JSON value, ending in a newline.
func (f Format) JSON(v []byte) []byte {
	v = ValidUTF8(v)
	var out []byte
	if f.Pretty {
		out = pretty.PrettyOptions(v, &pretty.Options{Width: 80, Indent: "    "})
	} else {
		out = append(pretty.Ugly(v), '\n')
	}
	if f.Color {
		out = pretty.Color(out, nil)
	}
	return out
}

// Error renders a failed command: "Class: Desc" for a QMP error reply,
// the error's text otherwise.
func (f Format) Error(err error) string {
	s := Printable(err.Error()) // QEMU's description, among others
	if f.Color {
		return paint(s, color.FgRed, color.Bold)
	}
	return s
}

// Notice renders a line about the connection.
func (f Format) Notice(s string) string {
	s = Printable(s) // it may quote the server (its version, an error)
	if f.Color {
		return paint(s, color.FgYellow)
	}
	return s
}

// EventTimeLayout is how event times are printed: RFC 3339 with QEMU's
// microseconds, always six digits (RFC3339Nano drops trailing zeros, so
// times would change width).
const EventTimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// Event renders an event. Pretty: a header line with name and time, then
// the data. Compact: the event as QEMU sent it, on one line, for tools
// that read JSON lines.
func (f Format) Event(ev qmp.Event) []byte {
	if !f.Pretty {
		line, _ := ev.MarshalJSON() // the data was valid JSON when read
		return append(ValidUTF8(line), '\n')
	}
	var b bytes.Buffer
	name := Printable(ev.Name)
	if f.Color {
		name = paint(name, color.FgCyan, color.Bold)
	}
	fmt.Fprintf(&b, "event %s at %s\n", name, ev.Timestamp.Local().Format(EventTimeLayout))
	if len(ev.Data) > 0 {
		b.Write(f.JSON(ev.Data))
	}
	return b.Bytes()
}

// paint colours s whatever fatih/color guessed about os.Stdout: whether
// to colour was decided once, by the caller of Format.
func paint(s string, attrs ...color.Attribute) string {
	c := color.New(attrs...)
	c.EnableColor()
	return c.Sprint(s)
}

// ValidUTF8 returns JSON text b with each byte that is not valid UTF-8
// written as \ufffd. A server's strings may carry such bytes (QEMU passes
// them through from a guest or a file name), and JSON, and the programs
// that read qmpsh's output, take UTF-8 only. In valid JSON text such a
// byte can only be inside a string, where the escape is the replacement
// character json.Marshal would have written. b itself is returned when
// it is valid, which is the rule.
func ValidUTF8(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			out = append(out, `\ufffd`...)
		} else {
			out = append(out, b[:n]...)
		}
		b = b[n:]
	}
	return out
}
