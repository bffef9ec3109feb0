package cmd

import (
	"encoding/json"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/qmp"
)

func TestParseMatch(t *testing.T) {
	m, err := parseMatch([]string{"device=job0", "len=1024", "ok=true", "info.id=x", `arr=[1, 2]`, "empty="})
	if err != nil {
		t.Fatal(err)
	}
	want := qmp.Match{"device": "job0", "len": qmp.OneOf{int64(1024), "1024"}, "ok": qmp.OneOf{true, "true"},
		"info.id": "x", "arr": []any{int64(1), int64(2)}, "empty": ""}
	got, _ := json.Marshal(m)
	wantJSON, _ := json.Marshal(want)
	if string(got) != string(wantJSON) {
		t.Fatalf("parseMatch = %s, want %s", got, wantJSON)
	}
	ev := qmp.Event{Name: "X", Data: json.RawMessage(`{"id": "123", "n": 123}`)}
	for _, f := range []string{"id=123", "n=123"} {
		m, err := parseMatch([]string{f})
		if err != nil || !m.Matches(ev) {
			t.Errorf("--match %s does not match %s: %v", f, ev.Data, err)
		}
	}
	for _, bad := range []string{"nokey", "=1", ".a=1", "a.=1", "a..b=1", "a={", "a=99999999999999999999999"} {
		if _, err := parseMatch([]string{bad}); exitCode(err) != ExitUsage {
			t.Errorf("parseMatch(%q) = %v, want a usage error", bad, err)
		}
	}
	if _, err := parseMatch([]string{"a=1", "a=2"}); exitCode(err) != ExitUsage {
		t.Errorf("a key matched twice: %v, want a usage error", err)
	}
}

// FuzzParseMatch: any --match flag is a Match a listener takes, or a
// usage error; never a panic.
func FuzzParseMatch(f *testing.F) {
	for _, s := range []string{"device=job0", "len=1024", "a.b={\"c\": [1]}", "x=", "=", "a..b=1", "a=[1", "n=99999999999999999999"} {
		f.Add(s)
	}
	c := qmp.NewClient()
	f.Fuzz(func(t *testing.T, flag string) {
		m, err := parseMatch([]string{flag})
		if err != nil {
			if exitCode(err) != ExitUsage {
				t.Fatalf("parseMatch(%q) = %v, not a usage error", flag, err)
			}
			return
		}
		l, err := c.ListenMatch(m)
		if err != nil {
			t.Fatalf("parseMatch(%q) = %v, which ListenMatch refuses: %v", flag, m, err)
		}
		l.Close()
	})
}
