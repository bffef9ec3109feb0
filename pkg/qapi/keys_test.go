package qapi

import (
	"fmt"
	"strings"
	"testing"
)

// TestCheckKeys: what is wrong with keys whatever the schema says, and
// nothing about values, which are the schema's to read.
func TestCheckKeys(t *testing.T) {
	kvs := func(words ...string) []KeyValue {
		var out []KeyValue
		for _, w := range words {
			k, v, _ := strings.Cut(w, "=")
			out = append(out, KeyValue{Key: k, Value: v})
		}
		return out
	}
	for _, tc := range []struct {
		words []string
		want  string // "" for none
	}{
		{[]string{"data={abc"}, ""},
		{[]string{"size={x", "a.b.c=1", "a.b.d=2"}, ""},
		{[]string{`a={"x":1}`, "a.b=2"}, ""},
		{[]string{"a.=1"}, `syntax error at "a.": empty segment in dotted key`},
		{[]string{"a=1", "a=2"}, `syntax error at "a": key is set more than once`},
		{[]string{"a.b=1", "a=2"}, `syntax error at "a": "a" is used both as a value and as an object`},
		{[]string{"a=1", "a.b=2"}, `syntax error at "a.b": "a" is used both as a value and as an object`},
	} {
		err := CheckKeys(kvs(tc.words...))
		if got := fmt.Sprint(err); (err == nil) != (tc.want == "") || err != nil && got != tc.want {
			t.Errorf("CheckKeys(%q) = %v, want %q", tc.words, err, tc.want)
		}
	}
}
