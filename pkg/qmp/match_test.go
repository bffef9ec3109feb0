package qmp_test

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/qmpsh/qmpsh/pkg/qmp"
)

func TestMatchMatches(t *testing.T) {
	data := `{"device": "job0", "len": 1073741824, "big": 18446744073709551615,
		"ok": true, "none": null, "info": {"id": "x", "n": [1, 2]}}`
	ev := qmp.Event{Name: "BLOCK_JOB_COMPLETED", Data: json.RawMessage(data)}
	for _, tc := range []struct {
		name string
		m    qmp.Match
		want bool
	}{
		{"Empty", qmp.Match{}, true},
		{"String", qmp.Match{"device": "job0"}, true},
		{"OtherString", qmp.Match{"device": "job1"}, false},
		{"Int", qmp.Match{"len": int64(1073741824)}, true},
		{"IntAsFloat", qmp.Match{"len": 1073741824.0}, true},
		{"IntIsNotString", qmp.Match{"len": "1073741824"}, false},
		{"Uint64", qmp.Match{"big": uint64(18446744073709551615)}, true},
		{"Uint64OffByOne", qmp.Match{"big": uint64(18446744073709551614)}, false},
		{"Bool", qmp.Match{"ok": true}, true},
		{"BoolIsNotString", qmp.Match{"ok": "true"}, false},
		{"Null", qmp.Match{"none": nil}, true},
		{"Dotted", qmp.Match{"info.id": "x"}, true},
		{"DottedArray", qmp.Match{"info.n": []int{1, 2}}, true},
		{"DottedArrayOther", qmp.Match{"info.n": []int{2, 1}}, false},
		{"Object", qmp.Match{"info": map[string]any{"id": "x", "n": []any{1, 2}}}, true},
		{"ObjectSubset", qmp.Match{"info": map[string]any{"id": "x"}}, false},
		{"Missing", qmp.Match{"nothere": "x"}, false},
		{"IntoScalar", qmp.Match{"device.x": "x"}, false},
		{"All", qmp.Match{"device": "job0", "ok": true}, true},
		{"AllButOne", qmp.Match{"device": "job0", "ok": false}, false},
		{"OneOf", qmp.Match{"device": qmp.OneOf{"job1", "job0"}}, true},
		{"OneOfNone", qmp.Match{"device": qmp.OneOf{"job1", 0}}, false},
		{"OneOfTyped", qmp.Match{"len": qmp.OneOf{int64(1073741824), "1073741824"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.m.Matches(ev); got != tc.want {
				t.Errorf("%v.Matches(%s) = %v, want %v", tc.m, data, got, tc.want)
			}
		})
	}
	t.Run("NoData", func(t *testing.T) {
		if (qmp.Match{"device": "job0"}).Matches(qmp.Event{Name: "STOP"}) {
			t.Error("an event without data matched a key")
		}
		if !(qmp.Match{}).Matches(qmp.Event{Name: "STOP"}) {
			t.Error("the empty match did not match an event without data")
		}
	})
}

func TestListenMatchRejectsBadMatches(t *testing.T) {
	c := qmp.NewClient()
	for _, tc := range []struct {
		name string
		m    qmp.Match
		want string
	}{
		{"EmptySegment", qmp.Match{"a..b": 1}, `match key "a..b": empty segment`},
		{"EmptyKey", qmp.Match{"": 1}, `match key "": empty segment`},
		{"NotJSON", qmp.Match{"a": make(chan int)}, `match key "a": json: unsupported type: chan int`},
		{"EmptyOneOf", qmp.Match{"a": qmp.OneOf{}}, `match key "a": OneOf without values`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := c.ListenMatch(tc.m, "X")
			if err == nil || err.Error() != tc.want {
				if l != nil {
					l.Close()
				}
				t.Fatalf("ListenMatch(%v) = %v, want %q", tc.m, err, tc.want)
			}
		})
	}
}

// FuzzMatch: any event data, valid JSON or not, is matched or not,
// without a panic, and a value matches itself at its key.
func FuzzMatch(f *testing.F) {
	f.Add(`{"device": "job0", "len": 10}`, "device", `"job0"`)
	f.Add(`{"info": {"id": [1, 2.5e3, null]}}`, "info.id", `[1, 2500, null]`)
	f.Add(`{"a": 18446744073709551615}`, "a", `18446744073709551615`)
	f.Add(`[1`, "a", `1`)
	f.Fuzz(func(t *testing.T, data, key, value string) {
		// Numbers kept as written: a float64 would round 2^53+1.
		d := json.NewDecoder(strings.NewReader(value))
		d.UseNumber()
		var v any
		if !json.Valid([]byte(value)) || d.Decode(&v) != nil {
			return
		}
		m := qmp.Match{key: v}
		m.Matches(qmp.Event{Name: "X", Data: json.RawMessage(data)})
		if strings.Contains(key, ".") || key == "" || !utf8.ValidString(key) {
			return // JSON would not keep such a key as it is
		}
		k, _ := json.Marshal(key)
		self := qmp.Event{Name: "X", Data: json.RawMessage(`{` + string(k) + `: ` + value + `}`)}
		if !m.Matches(self) {
			t.Errorf("Match{%q: %s} does not match %s", key, value, self.Data)
		}
	})
}
