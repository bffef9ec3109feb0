package qapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// schemaFile is QEMU 7.2's query-qmp-schema reply (its "return" value),
// saved from qemu-system-x86_64 -M none.
const schemaFile = "../../testdata/qemu-7.2-schema.json"

var (
	testSchemaOnce sync.Once
	testSchemaVal  *Schema
	testSchemaErr  error
)

func testSchema(t testing.TB) *Schema {
	t.Helper()
	testSchemaOnce.Do(func() {
		raw, err := os.ReadFile(schemaFile)
		if err != nil {
			testSchemaErr = err
			return
		}
		testSchemaVal, testSchemaErr = Load(raw)
	})
	if testSchemaErr != nil {
		t.Fatal(testSchemaErr)
	}
	return testSchemaVal
}

func TestSchemaLoad(t *testing.T) {
	s := testSchema(t)
	if !s.HasTypes() {
		t.Error("HasTypes() = false")
	}
	cmds, evs := s.Commands(), s.Events()
	if len(cmds) != 216 || len(evs) != 52 {
		t.Errorf("%d commands and %d events, want 216 and 52", len(cmds), len(evs))
	}
	if !slices.IsSorted(cmds) || !slices.IsSorted(evs) {
		t.Error("Commands or Events not sorted")
	}
	cmds[0] = "changed"
	if s.Commands()[0] == "changed" {
		t.Error("Commands returns the schema's own slice")
	}
	qs, ok := s.Command("query-status")
	if !ok || qs.MetaType != "command" || qs.ArgType == "" || qs.RetType == "" {
		t.Errorf("Command(query-status) = %+v, %v", qs, ok)
	}
	if _, ok := s.Command("STOP"); ok {
		t.Error("Command(STOP) found an event")
	}
	if _, ok := s.Event("STOP"); !ok {
		t.Error("Event(STOP) not found")
	}
	if si, ok := s.Type("int"); !ok || si.JSONType != "int" {
		t.Errorf("Type(int) = %+v, %v", si, ok)
	}
	// Optional members keep their "default": null.
	be, _ := s.Event("BLOCK_JOB_COMPLETED")
	data, _ := s.Type(be.ArgType)
	var opt []string
	for _, m := range data.Members {
		if m.Optional() {
			opt = append(opt, m.Name)
		}
	}
	if !slices.Equal(opt, []string{"error"}) {
		t.Errorf("BLOCK_JOB_COMPLETED optional members %q, want [error]", opt)
	}
}

func TestSchemaLoadForms(t *testing.T) {
	const entries = `[{"name":"stop","meta-type":"command","arg-type":"0","ret-type":"0"},{"name":"0","meta-type":"object","members":[]}]`
	for _, in := range []string{entries, ` {"return": ` + entries + `, "id": 1}`} {
		s, err := Load([]byte(in))
		if err != nil {
			t.Fatalf("Load(%s): %v", in, err)
		}
		if got := s.Commands(); !slices.Equal(got, []string{"stop"}) {
			t.Errorf("Load(%s).Commands() = %q", in, got)
		}
	}
	for _, in := range []string{
		``,
		`[`,
		`{"error": {"class": "CommandNotFound", "desc": "x"}}`,
		`[{"name":"x"}]`,
		`[{"meta-type":"command"}]`,
		`[null]`,
		`[{"name":"x","meta-type":"command"},{"name":"x","meta-type":"event"}]`,
	} {
		if s, err := Load([]byte(in)); err == nil {
			t.Errorf("Load(%q) = %v, want an error", in, s)
		}
	}
}

func TestFetchSchema(t *testing.T) {
	raw, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	fail := errors.New("CommandNotFound")
	server := func(replies map[string]string) func(context.Context, string) (json.RawMessage, error) {
		return func(_ context.Context, cmd string) (json.RawMessage, error) {
			if r, ok := replies[cmd]; ok {
				return json.RawMessage(r), nil
			}
			return nil, fail
		}
	}
	ctx := context.Background()
	s, err := Fetch(ctx, server(map[string]string{"query-qmp-schema": string(raw)}))
	if err != nil || !s.HasTypes() || len(s.Commands()) != 216 {
		t.Errorf("Fetch(QEMU 7.2) = %v, %v", s, err)
	}
	s, err = Fetch(ctx, server(map[string]string{"query-commands": `[{"name":"stop"},{"name":"cont"}]`}))
	if err != nil || s.HasTypes() || !slices.Equal(s.Commands(), []string{"cont", "stop"}) {
		t.Errorf("Fetch(query-commands only) = %v, %v", s, err)
	}
	s, err = Fetch(ctx, server(map[string]string{"query-qmp-schema": `"garbage"`, "query-commands": `[{"name":"stop"}]`}))
	if err != nil || s.HasTypes() || !slices.Equal(s.Commands(), []string{"stop"}) {
		t.Errorf("Fetch(bad schema) = %v, %v", s, err)
	}
	s, err = Fetch(ctx, server(nil))
	if s != nil || err != fail {
		t.Errorf("Fetch(nothing) = %v, %v", s, err)
	}
}

func TestSchemaValidationErrorFields(t *testing.T) {
	s := testSchema(t)
	_, err := s.Build("blockdev-add", []KeyValue{{"driver", "qcow2"}, {"file.driver", "file"}, {"file.filenam", "/x"}})
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %T %v", err, err)
	}
	want := ValidationError{Command: "blockdev-add", Arg: "file.filenam", Msg: `unknown argument "file.filenam"`, Suggestion: "file.filename"}
	if *ve != want {
		t.Errorf("error = %+v, want %+v", *ve, want)
	}
	_, err = s.Build("query-stat", nil)
	if !errors.As(err, &ve) || ve.Arg != "" || ve.Command != "query-stat" || ve.Suggestion != "query-stats" {
		t.Errorf("unknown command error = %+v", ve)
	}
	if got := s.Suggest("query-status"); got != "" {
		t.Errorf("Suggest(query-status) = %q, want \"\" for an exact name", got)
	}
	if got := s.Suggest("QUERY_STATUS"); got != "query-status" {
		t.Errorf("Suggest(QUERY_STATUS) = %q", got)
	}
	if got := s.Suggest("completely-different"); got != "" {
		t.Errorf("Suggest(completely-different) = %q", got)
	}
}

// TestSchemaQEMU checks the saved schema against the installed QEMU (when
// it is 7.2) and that typed commands are accepted by QEMU where guessed
// ones are not.
func TestSchemaQEMU(t *testing.T) {
	addr := qmptest.StartQEMU(t)
	conn, err := net.DialTimeout("unix", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReaderSize(conn, 1<<20)
	read := func() map[string]json.RawMessage {
		t.Helper()
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatal(err)
			}
			if _, ev := m["event"]; !ev {
				return m
			}
		}
	}
	call := func(v any) map[string]json.RawMessage {
		t.Helper()
		b, _ := json.Marshal(v)
		if _, err := conn.Write(append(b, '\n')); err != nil {
			t.Fatal(err)
		}
		return read()
	}
	read() // greeting
	call(map[string]any{"execute": "qmp_capabilities"})

	rep := call(map[string]any{"execute": "query-qmp-schema"})
	live, err := Load(rep["return"])
	if err != nil {
		t.Fatal(err)
	}
	var ver struct {
		QEMU struct{ Major, Minor int } `json:"qemu"`
	}
	json.Unmarshal(call(map[string]any{"execute": "query-version"})["return"], &ver)
	if ver.QEMU.Major == 7 && ver.QEMU.Minor == 2 {
		saved := testSchema(t)
		if !slices.Equal(live.Commands(), saved.Commands()) || !slices.Equal(live.Events(), saved.Events()) {
			t.Errorf("QEMU 7.2's schema differs from %s", schemaFile)
		}
	} else {
		t.Logf("QEMU %d.%d: not comparing with %s", ver.QEMU.Major, ver.QEMU.Minor, schemaFile)
	}

	for _, line := range []string{
		"object-add qom-type=secret id=s0 data=123",
		"blockdev-add driver=null-co node-name=n0 size=1M read-only=on",
		"query-block-exports",
	} {
		name, kvs := splitWords(line)
		guessed, err := (*Schema)(nil).Build(name, kvs)
		if err != nil {
			t.Fatal(err)
		}
		typed, err := live.Build(name, kvs)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		req := map[string]any{"execute": name}
		if typed != nil {
			req["arguments"] = typed
		}
		if rep := call(req); rep["error"] != nil {
			t.Errorf("%s: QEMU rejects the typed command: %s", line, rep["error"])
		}
		if !reflect.DeepEqual(guessed, typed) {
			// Sent again, the guessed form fails for its integer (or on
			// the now existing id, which would hide that: use new ids).
			args := guessed
			if id, ok := args["id"].(string); ok {
				args["id"] = id + "-guessed"
			}
			if rep := call(map[string]any{"execute": name, "arguments": args}); rep["error"] == nil ||
				!bytes.Contains(rep["error"], []byte("expected")) {
				t.Errorf("%s: guessed arguments %v: QEMU replied %s, want a type error", line, args, rep["error"])
			}
		}
	}
}

// splitWords splits a command line without quotes into its name and
// key=value arguments (pkg/shell does this for real lines).
func splitWords(line string) (string, []KeyValue) {
	words := strings.Fields(line)
	var kvs []KeyValue
	for _, w := range words[1:] {
		k, v, _ := strings.Cut(w, "=")
		kvs = append(kvs, KeyValue{k, v})
	}
	return words[0], kvs
}

// A schema no QEMU sends, with an alternate among its own members or a
// union among its own branches, is checked, completed and explained in
// bounded time: the offending member or branch is dropped at Load.
func TestLoadUntangles(t *testing.T) {
	union := `{"name": "20", "meta-type": "object", "members": [{"name": "t", "type": "21"}], "tag": "t", "variants": [`
	var cases []string
	for i := range 10 {
		cases = append(cases, `{"case": "v`+strconv.Itoa(i)+`", "type": "20"}`)
	}
	union += strings.Join(cases, ", ") + `]}`
	raw := `[{"name": "int", "meta-type": "builtin", "json-type": "int"},
	{"name": "0", "meta-type": "object", "members": []},
	{"name": "cmd-alt", "meta-type": "command", "arg-type": "10", "ret-type": "0"},
	{"name": "10", "meta-type": "object", "members": [{"name": "x", "type": "11"}]},
	{"name": "11", "meta-type": "alternate", "members": [{"type": "11"}, {"type": "int"}]},
	{"name": "cmd-union", "meta-type": "command", "arg-type": "20", "ret-type": "0"},
	{"name": "21", "meta-type": "enum", "values": ["v0","v1","v2","v3","v4","v5","v6","v7","v8","v9"]},
	` + union + `]`
	s, err := Load([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if args, err := s.CommandArgs("cmd-alt", []KeyValue{{"x", "12"}}); err != nil || args["x"] != int64(12) {
			t.Errorf("cmd-alt x=12: %v, %v", args, err)
		}
		if _, err := s.CommandArgs("cmd-alt", []KeyValue{{"x", "1.5"}}); err == nil || !strings.Contains(err.Error(), "integer") {
			t.Errorf("cmd-alt x=1.5: %v, want an error asking for an integer", err)
		}
		if _, err := s.CommandArgs("cmd-union", []KeyValue{{"x", "1"}}); err == nil {
			t.Errorf("cmd-union x=1: no error")
		}
		s.CompleteArgs("cmd-union", nil, "")
		s.Help("cmd-union")
		s.Help("cmd-alt")
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("checking against a tangled schema did not finish in 10s")
	}
}
