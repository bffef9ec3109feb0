package shell

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// The pipe editor reads lines as bufio.ScanLines does (CR LF too, a last
// line without a newline), and skips a line too long to hold, going on
// with the next.
func TestPipeEditorLines(t *testing.T) {
	long := strings.Repeat("x", MaxPipeLine+1)
	in := "a\r\n\n" + long + "\nb\n" + strings.Repeat("y", MaxPipeLine) + "\nc"
	ed := NewPipeEditor(strings.NewReader(in), io.Discard)
	want := []string{"a", "", "line 3", "b", "y", "c"}
	for i, w := range want {
		line, err := ed.ReadLine()
		var tl *LineTooLongError
		switch {
		case w == "line 3":
			if !errors.As(err, &tl) || tl.Line != 3 {
				t.Fatalf("line %d: %q, %v; want a *LineTooLongError for line 3", i+1, line, err)
			}
		case w == "y":
			if err != nil || line != strings.Repeat("y", MaxPipeLine) {
				t.Fatalf("line %d: %d bytes, %v; want the longest line allowed", i+1, len(line), err)
			}
		case err != nil || line != w:
			t.Fatalf("line %d: %q, %v; want %q", i+1, line, err, w)
		}
	}
	if line, err := ed.ReadLine(); err != io.EOF {
		t.Fatalf("after the last line: %q, %v; want io.EOF", line, err)
	}
}
