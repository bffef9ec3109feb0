package qapi

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// helpDir holds the golden files of Help and List.
const helpDir = "../../testdata/help"

func init() {
	// -update rewrites the golden files. Another test file of the package
	// may define the same flag; share it then.
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files")
	}
}

func updateGolden() bool {
	f := flag.Lookup("update")
	if f == nil {
		return false
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return false
	}
	b, _ := g.Get().(bool)
	return b
}

// TestSchemaHelpJSONRoundTrip checks that entries come back out as QEMU
// sent them: "default": null and empty "members" kept.
func TestSchemaHelpJSONRoundTrip(t *testing.T) {
	s := testSchema(t)
	raw, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	var all []json.RawMessage
	if err := json.Unmarshal(raw, &all); err != nil {
		t.Fatal(err)
	}
	byName := map[string]any{}
	for _, e := range all {
		var v map[string]any
		json.Unmarshal(e, &v)
		byName[v["name"].(string)] = v
	}
	for _, name := range []string{"query-status", "BLOCK_JOB_COMPLETED", "object-add", "blockdev-add", "STOP"} {
		out, err := s.HelpJSON(name)
		if err != nil {
			t.Fatalf("HelpJSON(%s): %v", name, err)
		}
		var got []map[string]any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("HelpJSON(%s): %v", name, err)
		}
		if got[0]["name"] != name {
			t.Errorf("HelpJSON(%s) starts with %v", name, got[0]["name"])
		}
		seen := map[string]bool{}
		for _, e := range got {
			n := e["name"].(string)
			if seen[n] {
				t.Errorf("HelpJSON(%s) repeats %s", name, n)
			}
			seen[n] = true
			if !reflect.DeepEqual(e, byName[n]) {
				t.Errorf("HelpJSON(%s) entry %s = %v, want %v", name, n, e, byName[n])
			}
		}
		if cmd, ok := s.Command(name); ok && !seen[cmd.ArgType] {
			t.Errorf("HelpJSON(%s) lacks the argument type %s", name, cmd.ArgType)
		}
	}
	if _, err := s.HelpJSON("nope"); err == nil {
		t.Error("HelpJSON(nope) succeeded")
	}
}

// TestSchemaHelpGolden compares Help and List with testdata/help; run
// with -update to rewrite them.
func TestSchemaHelpGolden(t *testing.T) {
	s := testSchema(t)
	cases := map[string]func() (string, error){
		"list":         func() (string, error) { return s.List(), nil },
		"list.json":    func() (string, error) { return string(s.ListJSON()) + "\n", nil },
		"query-status": func() (string, error) { return s.Help("query-status") },
		"query-status.json": func() (string, error) {
			b, err := s.HelpJSON("query-status")
			return string(b) + "\n", err
		},
		"object-add":          func() (string, error) { return s.Help("object-add") },
		"blockdev-add":        func() (string, error) { return s.Help("blockdev-add") },
		"chardev-add":         func() (string, error) { return s.Help("chardev-add") },
		"transaction":         func() (string, error) { return s.Help("transaction") },
		"qmp_capabilities":    func() (string, error) { return s.Help("qmp_capabilities") },
		"query-commands":      func() (string, error) { return s.Help("query-commands") },
		"STOP":                func() (string, error) { return s.Help("STOP") },
		"BLOCK_JOB_COMPLETED": func() (string, error) { return s.Help("BLOCK_JOB_COMPLETED") },
	}
	for name, f := range cases {
		got, err := f()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		path := filepath.Join(helpDir, name+".golden")
		if updateGolden() {
			if err := os.MkdirAll(helpDir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%v (run go test -run TestSchemaHelpGolden -update to create it)", err)
			continue
		}
		if got != string(want) {
			t.Errorf("%s differs from %s (run with -update to accept):\n%s", name, path, got)
		}
	}
}

func TestSchemaHelp(t *testing.T) {
	s := testSchema(t)
	_, err := s.Help("query-stat")
	if err == nil || err.Error() != `unknown command or event "query-stat" (did you mean "query-stats"?)` {
		t.Errorf("Help(query-stat) error = %v", err)
	}
	_, err = s.Help("STPO")
	if err == nil || err.Error() != `unknown command or event "STPO" (did you mean "STOP"?)` {
		t.Errorf("Help(STPO) error = %v", err)
	}
	if _, err := s.Help("int"); err == nil {
		t.Error("Help(int) describes a type; want commands and events only")
	}
	// Every command and event renders, without overlong lines (enum
	// values wrap) or trailing blanks.
	for _, name := range append(s.Commands(), s.Events()...) {
		h, err := s.Help(name)
		if err != nil {
			t.Fatalf("Help(%s): %v", name, err)
		}
		for _, l := range strings.Split(strings.TrimSuffix(h, "\n"), "\n") {
			if strings.TrimRight(l, " ") != l {
				t.Errorf("Help(%s): trailing blank in %q", name, l)
			}
			if len(l) > helpWidth && strings.Contains(strings.TrimSpace(l), ", ") {
				t.Errorf("Help(%s): line of %d characters not wrapped: %q", name, len(l), l)
			}
		}
		if _, err := s.HelpJSON(name); err != nil {
			t.Errorf("HelpJSON(%s): %v", name, err)
		}
	}
}

// A server's schema can make help as long as it likes: a type used twice
// at each level doubles it per level, a deep chain grows it with the
// square of its depth. Help stops at maxHelp and says where to look.
func TestHelpBoundedOnHostileSchema(t *testing.T) {
	for _, tc := range []struct {
		name    string
		levels  int
		members string // each level's members, %d the next level's type
	}{
		{"SharedTypes", 18, `[{"name": "a", "type": "t%d"}, {"name": "b", "type": "t%d"}]`},
		{"DeepChain", 3000, `[{"name": "m", "type": "t%d"}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entries := []string{
				`{"name": "cmd", "meta-type": "command", "arg-type": "t0", "ret-type": "t0"}`,
				fmt.Sprintf(`{"name": "t%d", "meta-type": "builtin", "json-type": "string"}`, tc.levels),
			}
			for i := 0; i < tc.levels; i++ {
				m := strings.ReplaceAll(tc.members, "%d", strconv.Itoa(i+1))
				entries = append(entries, fmt.Sprintf(`{"name": "t%d", "meta-type": "object", "members": %s}`, i, m))
			}
			s, err := Load([]byte("[" + strings.Join(entries, ",") + "]"))
			if err != nil {
				t.Fatal(err)
			}
			h, err := s.Help("cmd")
			if err != nil {
				t.Fatal(err)
			}
			const cut = "... (cut short at 1024 KiB: the schema nests too much to show whole; schema --json NAME gives every type it uses)\n"
			if len(h) > maxHelp+1+len(cut) || !strings.HasSuffix(h, cut) {
				t.Errorf("help of %d bytes ends %q; want at most about %d, ending %q", len(h), h[max(0, len(h)-200):], maxHelp, cut)
			}
		})
	}
}
