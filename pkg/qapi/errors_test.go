package qapi

import (
	"strings"
	"testing"
)

func TestSyntaxErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  SyntaxError
		want string
	}{
		{name: "plain", err: SyntaxError{Token: "foo", Msg: "expected key=value"},
			want: `syntax error at "foo": expected key=value`},
		{name: "control characters stay on one line", err: SyntaxError{Token: "a\nb", Msg: "m"},
			want: `syntax error at "a\nb": m`},
		{name: "long token shortened", err: SyntaxError{Token: strings.Repeat("x", 70), Msg: "m"},
			want: `syntax error at "` + strings.Repeat("x", 64) + `...": m`},
		{name: "shortened on a rune boundary", err: SyntaxError{Token: strings.Repeat("x", 63) + "é" + "yyyy", Msg: "m"},
			want: `syntax error at "` + strings.Repeat("x", 63) + `...": m`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}
