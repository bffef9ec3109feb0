package shell

import (
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"github.com/qmpsh/qmpsh/pkg/qmp"
)

// Event times have six fractional digits whatever their value, so that
// columns of events line up and a time never looks shorter than it is.
func TestEventTimeFixedDigits(t *testing.T) {
	re := regexp.MustCompile(`^event STOP at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)\n$`)
	for _, us := range []int64{0, 810000, 811110, 123456, 1} {
		ev := qmp.Event{Name: "STOP", Timestamp: time.Unix(1700000000, us*1000)}
		got := string(Format{Pretty: true}.Event(ev))
		if !re.MatchString(got) {
			t.Errorf("%d µs: %q, want six fractional digits", us, got)
		}
	}
}

func TestValidUTF8(t *testing.T) {
	for in, want := range map[string]string{
		`{"a":"b"}`:             `{"a":"b"}`,
		`"é"`:                   `"é"`,
		"\"a\xffb\"":            `"a\ufffdb"`,
		"\"\xc0\x80\"":          `"\ufffd\ufffd"`,       // overlong: each byte
		"\"\xe2\x82\"":          `"\ufffd\ufffd"`,       // cut short
		"\"\xed\xa0\x80\"":      `"\ufffd\ufffd\ufffd"`, // a surrogate's encoding
		"[\"\xff\",\"ok\xfe\"]": `["\ufffd","ok\ufffd"]`,
	} {
		got := string(ValidUTF8([]byte(in)))
		if got != want {
			t.Errorf("ValidUTF8(%q) = %q, want %q", in, got, want)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("ValidUTF8(%q) = %q: not valid JSON", in, got)
		}
	}
}
