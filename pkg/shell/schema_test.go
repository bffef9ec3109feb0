package shell

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/qapi"
	"github.com/qmpsh/qmpsh/pkg/qmp"
)

// schemaFile is QEMU 7.2's query-qmp-schema reply (its "return" value),
// saved from qemu-system-x86_64 -M none.
const schemaFile = "../../testdata/qemu-7.2-schema.json"

var (
	testSchemaOnce sync.Once
	testSchemaVal  *qapi.Schema
	testSchemaErr  error
)

func testSchema(t testing.TB) *qapi.Schema {
	t.Helper()
	testSchemaOnce.Do(func() {
		raw, err := os.ReadFile(schemaFile)
		if err != nil {
			testSchemaErr = err
			return
		}
		testSchemaVal, testSchemaErr = qapi.Load(raw)
	})
	if testSchemaErr != nil {
		t.Fatal(testSchemaErr)
	}
	return testSchemaVal
}

// TestSchemaBuild covers typing and validation through ParseLine, with
// QEMU 7.2's schema. want is the JSON of the arguments, or the error.
func TestSchemaBuild(t *testing.T) {
	s := testSchema(t)
	tests := []struct {
		line string
		want string // JSON arguments ("null" for none), or "error: ..."
	}{
		// The acceptance case: a string that looks like a number.
		{"object-add qom-type=secret id=s0 data=123", `{"qom-type":"secret","id":"s0","data":"123"}`},
		{"query-status", `null`},
		{"stop", `null`},

		// str
		{"blockdev-add driver=null-co node-name=123 size=1M", `{"driver":"null-co","node-name":"123","size":1048576}`},
		{`object-add qom-type=secret id=s0 data="a b"`, `{"qom-type":"secret","id":"s0","data":"a b"}`},
		{`object-add qom-type=secret id=s0 data=true`, `{"qom-type":"secret","id":"s0","data":"true"}`},
		{`object-add qom-type=secret id=s0 data={"x":1}`, `{"qom-type":"secret","id":"s0","data":"{\"x\":1}"}`},
		{`object-add qom-type=secret id=s0 data=`, `{"qom-type":"secret","id":"s0","data":""}`},

		// int
		{"block_resize node-name=n size=0x10", `{"node-name":"n","size":16}`},
		{"block_resize node-name=n size=0X1f", `{"node-name":"n","size":31}`},
		{"block_resize node-name=n size=0o17", `{"node-name":"n","size":15}`},
		{"block_resize node-name=n size=0b101", `{"node-name":"n","size":5}`},
		{"block_resize node-name=n size=010", `{"node-name":"n","size":10}`},
		{"block_resize node-name=n size=1_000", `{"node-name":"n","size":1000}`},
		{"block_resize node-name=n size=+5", `{"node-name":"n","size":5}`},
		{"block_resize node-name=n size=-5", `{"node-name":"n","size":-5}`},
		{"block_resize node-name=n size=64k", `{"node-name":"n","size":65536}`},
		{"block_resize node-name=n size=10G", `{"node-name":"n","size":10737418240}`},
		{"block_resize node-name=n size=18446744073709551615", `{"node-name":"n","size":18446744073709551615}`},
		{"block_resize node-name=n size=-9223372036854775808", `{"node-name":"n","size":-9223372036854775808}`},
		{"block_resize node-name=n size=abc", `error: block_resize: argument "size" expects an integer, got "abc"`},
		{"block_resize node-name=n size=1.5", `error: block_resize: argument "size" expects an integer, got "1.5"`},
		{"block_resize node-name=n size=", `error: block_resize: argument "size" expects an integer, got ""`},
		{"block_resize node-name=n size=0x", `error: block_resize: argument "size" expects an integer, got "0x"`},
		{"block_resize node-name=n size=--1", `error: block_resize: argument "size" expects an integer, got "--1"`},
		{"block_resize node-name=n size=18446744073709551616", `error: block_resize: argument "size" is out of range: "18446744073709551616"`},
		{"block_resize node-name=n size=-9223372036854775809", `error: block_resize: argument "size" is out of range: "-9223372036854775809"`},
		{"block_resize node-name=n size=16E", `error: block_resize: argument "size" is out of range: "16E"`},

		// bool
		{"blockdev-add driver=null-co node-name=a read-only=on force-share=yes auto-read-only=TRUE", `{"driver":"null-co","node-name":"a","read-only":true,"force-share":true,"auto-read-only":true}`},
		{"blockdev-add driver=null-co node-name=a read-only=off force-share=no auto-read-only=False", `{"driver":"null-co","node-name":"a","read-only":false,"force-share":false,"auto-read-only":false}`},
		{"blockdev-add driver=null-co node-name=a read-only=1", `error: blockdev-add: argument "read-only" expects a boolean (true/false, on/off, yes/no), got "1"`},

		// str or null (an alternate)
		{"migrate-set-parameters tls-creds=null", `{"tls-creds":null}`},
		{"migrate-set-parameters tls-creds=123 tls-hostname=h", `{"tls-creds":"123","tls-hostname":"h"}`},

		// enum
		{"blockdev-add driver=file node-name=f filename=/x discard=unmap aio=native", `{"driver":"file","node-name":"f","filename":"/x","discard":"unmap","aio":"native"}`},
		{"blockdev-add driver=file filename=/x discard=umap", `error: blockdev-add: argument "discard" has invalid value "umap" (did you mean "unmap"?)`},
		{"blockdev-add driver=file filename=/x discard=zz", `error: blockdev-add: argument "discard" has invalid value "zz" (expected one of ignore, unmap)`},
		{"blockdev-add driver=flie filename=/x", `error: blockdev-add: argument "driver" has invalid value "flie" (did you mean "file"?)`},
		{"object-add qom-type=secrt id=s0", `error: object-add: argument "qom-type" has invalid value "secrt" (did you mean "secret"?)`},

		// any: qmp-shell's guessing
		{"qom-set path=/machine property=p value=123", `{"path":"/machine","property":"p","value":123}`},
		{"qom-set path=/machine property=p value=abc", `{"path":"/machine","property":"p","value":"abc"}`},
		{`qom-set path=/machine property=p value={"a":[1]}`, `{"path":"/machine","property":"p","value":{"a":[1]}}`},
		{"qom-set path=/machine property=p value.a=1 value.b=x", `{"path":"/machine","property":"p","value":{"a":1,"b":"x"}}`},

		// objects: dotted keys, JSON, a JSON object extended by dotted keys
		{"blockdev-add driver=null-co node-name=a cache.direct=on cache.no-flush=off", `{"driver":"null-co","node-name":"a","cache":{"direct":true,"no-flush":false}}`},
		{`blockdev-add driver=null-co node-name=a cache={"direct":true}`, `{"driver":"null-co","node-name":"a","cache":{"direct":true}}`},
		{`blockdev-add driver=null-co node-name=a cache={"direct":true} cache.no-flush=on`, `{"driver":"null-co","node-name":"a","cache":{"direct":true,"no-flush":true}}`},
		{`blockdev-add driver=null-co node-name=a cache={'direct':True}`, `{"driver":"null-co","node-name":"a","cache":{"direct":true}}`},
		{"blockdev-add driver=null-co cache=on", `error: blockdev-add: argument "cache" expects an object (cache.MEMBER=VALUE or {...}), got "on"`},
		{`blockdev-add driver=null-co cache={"direct":1}`, `error: blockdev-add: argument "cache.direct" expects a boolean, got 1`},
		{`blockdev-add driver=null-co cache={"direkt":true}`, `error: blockdev-add: unknown argument "cache.direkt" (did you mean "cache.direct"?)`},
		{`blockdev-add driver=null-co cache={"direct":true} cache.direct=on`, `error: syntax error at "cache.direct": key is set more than once`},
		{"blockdev-add driver=null-co node-name.a=1", `error: blockdev-add: argument "node-name" is a string, not an object`},
		{"blockdev-add driver.a=1", `error: blockdev-add: argument "driver" is an enum value, not an object`},
		{`blockdev-add driver=null-co cache={"direct":`, `error: syntax error at "cache": invalid JSON value: unexpected end of JSON input`},
		{"blockdev-add driver=null-co a..b=1", `error: syntax error at "a..b": empty segment in dotted key`},
		{"blockdev-add driver=null-co driver=file", `error: syntax error at "driver": key is set more than once`},
		{"blockdev-add driver=null-co cache.direct=on cache=x", `error: syntax error at "cache": "cache" is used both as a value and as an object`},

		// Unions: the discriminator selects the members, in any order.
		{"blockdev-add filename=/x driver=file node-name=f", `{"driver":"file","node-name":"f","filename":"/x"}`},
		{"blockdev-add driver=qcow2 node-name=q file.driver=file file.filename=/x", `{"driver":"qcow2","node-name":"q","file":{"driver":"file","filename":"/x"}}`},
		{"blockdev-add driver=qcow2 node-name=q file.filename=/x file.driver=file file.aio=io_uring", `{"driver":"qcow2","node-name":"q","file":{"driver":"file","filename":"/x","aio":"io_uring"}}`},
		{"blockdev-add filename=/x", `error: blockdev-add: argument "driver" is missing`},
		{"blockdev-add driver=null-co filename=/x", `error: blockdev-add: unknown argument "filename"`},
		{"blockdev-add driver=qcow2 node-name=q file.driver=file", `error: blockdev-add: argument "file.filename" is missing`},
		{"blockdev-add driver=qcow2 node-name=q file.driver=file file.filenam=/x", `error: blockdev-add: unknown argument "file.filenam" (did you mean "file.filename"?)`},
		{`blockdev-add driver=qcow2 file={"driver":"file","filename":"/x","aio":"nativ"}`, `error: blockdev-add: argument "file.aio" has invalid value "nativ" (did you mean "native"?)`},
		{`blockdev-add driver=qcow2 file={"driver":"file"}`, `error: blockdev-add: argument "file.filename" is missing`},
		{"object-add qom-type=iothread id=io0 poll-max-ns=1000", `{"qom-type":"iothread","id":"io0","poll-max-ns":1000}`},
		{"object-add qom-type=can-bus id=c0", `{"qom-type":"can-bus","id":"c0"}`},
		{"object-add qom-type=can-bus id=c0 data=1", `error: object-add: unknown argument "data"`},
		{"chardev-add id=c0 backend.type=socket backend.data.addr.type=unix backend.data.addr.data.path=/tmp/s backend.data.server=on backend.data.wait=off",
			`{"id":"c0","backend":{"type":"socket","data":{"addr":{"type":"unix","data":{"path":"/tmp/s"}},"server":true,"wait":false}}}`},
		{"chardev-add id=c0 backend.type=socket backend.data.addr.type=unix backend.data.addr.data.pth=/tmp/s",
			`error: chardev-add: unknown argument "backend.data.addr.data.pth" (did you mean "backend.data.addr.data.path"?)`},

		// Alternates
		{"blockdev-add driver=qcow2 node-name=q file=n0 backing=null", `{"driver":"qcow2","node-name":"q","file":"n0","backing":null}`},
		{"blockdev-add driver=qcow2 node-name=q file=123 backing=456", `{"driver":"qcow2","node-name":"q","file":"123","backing":"456"}`},
		{`blockdev-add driver=qcow2 node-name=q file={"driver":"null-co"}`, `{"driver":"qcow2","node-name":"q","file":{"driver":"null-co"}}`},
		{`blockdev-add driver=qcow2 node-name=q file=[1]`, `{"driver":"qcow2","node-name":"q","file":"[1]"}`},
		{`blockdev-add driver=qcow2 node-name=q file={"driver":"nope"}`, `error: blockdev-add: argument "file.driver" has invalid value "nope" (did you mean "nvme"?)`},
		{`blockdev-add driver=qcow2 node-name=q file={"driver":1}`, `error: blockdev-add: argument "file.driver" expects one of blkdebug, blklogwrites, blkreplay, blkverify, bochs, cloop, compress, copy-before-write, copy-on-read, dmg, file, snapshot-access, ftp, ftps, gluster, host_cdrom, host_device, http, https, iscsi, luks, nbd, nfs, null-aio, null-co, nvme, parallels, preallocate, qcow, qcow2, qed, quorum, raw, rbd, replication, ssh, throttle, vdi, vhdx, vmdk, vpc, vvfat, got 1`},
		{`blockdev-add driver=qcow2 node-name=q file=null`, `{"driver":"qcow2","node-name":"q","file":"null"}`},
		{`blockdev-add driver=qcow2 node-name=q file.driver=null-co backing.driver=null-co`, `{"driver":"qcow2","node-name":"q","file":{"driver":"null-co"},"backing":{"driver":"null-co"}}`},

		{"blockdev-add driver=qcow2 node-name=q file=f overlap-check=all", `{"driver":"qcow2","node-name":"q","file":"f","overlap-check":"all"}`},
		{"blockdev-add driver=qcow2 node-name=q file=f overlap-check.template=none overlap-check.main-header=on",
			`{"driver":"qcow2","node-name":"q","file":"f","overlap-check":{"template":"none","main-header":true}}`},
		{"blockdev-add driver=qcow2 node-name=q file=f overlap-check=al", `error: blockdev-add: argument "overlap-check" has invalid value "al" (did you mean "all"?)`},

		// Arrays
		{`block-dirty-bitmap-merge node=n target=t bitmaps=["a",{"node":"n","name":"b"}]`, `{"node":"n","target":"t","bitmaps":["a",{"node":"n","name":"b"}]}`},
		{`block-dirty-bitmap-merge node=n target=t bitmaps=[1]`, `error: block-dirty-bitmap-merge: argument "bitmaps[0]" expects a string or an object, got 1`},
		{`block-dirty-bitmap-merge node=n target=t bitmaps=a`, `error: block-dirty-bitmap-merge: argument "bitmaps" expects an array ([...]), got "a"`},
		{`transaction actions=[{"type":"abort","data":{}}]`, `{"actions":[{"type":"abort","data":{}}]}`},
		{`transaction actions=[{"type":"abrt","data":{}}]`, `error: transaction: argument "actions[0].type" has invalid value "abrt" (did you mean "abort"?)`},

		// Unknown and missing arguments, unknown commands
		{"blockdev-add nodename=x driver=file filename=/x", `error: blockdev-add: unknown argument "nodename" (did you mean "node-name"?)`},
		{"object-add qom-type=secret id=s0 dat=123", `error: object-add: unknown argument "dat" (did you mean "data"?)`},
		{"object-add qom-type=secret id=s0 zzzzzz=1", `error: object-add: unknown argument "zzzzzz"`},
		{"object-add id=s0", `error: object-add: argument "qom-type" is missing`},
		{"object-add qom-type=secret", `error: object-add: argument "id" is missing`},
		{"object-add", `error: object-add: argument "qom-type" is missing`},
		{"query-status verbose=1", `error: query-status: unknown argument "verbose" (query-status takes no arguments)`},
		{"query-statuss", `error: unknown command "query-statuss" (did you mean "query-status"?)`},
		{"device-add driver=e1000", `error: unknown command "device-add" (did you mean "device_add"?)`},
		{"xyzzy", `error: unknown command "xyzzy"`},

		// device_add passes device properties on: extra arguments are guessed.
		{"device_add driver=virtio-blk-pci id=123 drive=d0 bootindex=1", `{"driver":"virtio-blk-pci","id":"123","drive":"d0","bootindex":1}`},
		{"device_add drive=d0", `error: device_add: argument "driver" is missing`},

		// Transactions: each action's data is typed.
		{"transaction( block-dirty-bitmap-add node=n name=123 granularity=64K )",
			`{"actions":[{"type":"block-dirty-bitmap-add","data":{"node":"n","name":"123","granularity":65536}}]}`},
		{"transaction( block-dirty-bitmap-add node=n nam=b )", `error: block-dirty-bitmap-add: unknown argument "nam" (did you mean "name"?)`},
		{"transaction( block-dirty-bitmap-ad node=n name=b )", `error: unknown transaction action "block-dirty-bitmap-ad" (did you mean "block-dirty-bitmap-add"?)`},
		{"transaction( abort )", `{"actions":[{"type":"abort","data":{}}]}`},
		{"transaction( abort", `error: syntax error at "transaction(": transaction block is not closed by ")" on this line`},

		// Raw JSON is not checked; syntax errors are ParseLine's.
		{`{"execute":"nope","arguments":{"x":1}}`, `raw`},
		{"", `nil`},
		{"# comment", `nil`},
		{"blockdev-add driver", `error: syntax error at "driver": expected key=value`},
		{`blockdev-add driver="x`, `error: syntax error at "driver=\"x": unterminated quote`},
	}
	for _, tc := range tests {
		cmd, err := parseTyped(s, tc.line)
		got := ""
		switch {
		case err != nil:
			got = "error: " + err.Error()
			var ve *qapi.ValidationError
			var se *qapi.SyntaxError
			if !errors.As(err, &ve) && !errors.As(err, &se) {
				t.Errorf("parseLine(%q) error %T, want *qapi.ValidationError or *qapi.SyntaxError", tc.line, err)
			}
		case cmd == nil:
			got = "nil"
		case cmd.Raw != nil:
			got = "raw"
		default:
			b, err := json.Marshal(cmd.Args)
			if err != nil {
				t.Fatalf("parseLine(%q): arguments do not marshal: %v", tc.line, err)
			}
			got = string(b)
		}
		if strings.HasPrefix(tc.want, "{") && !strings.HasPrefix(got, "error") {
			if !jsonEq(got, tc.want) {
				t.Errorf("parseLine(%q)\n got %s\nwant %s", tc.line, got, tc.want)
			}
			continue
		}
		if got != tc.want {
			t.Errorf("parseLine(%q)\n got %s\nwant %s", tc.line, got, tc.want)
		}
	}
}

// tinySchema has what QEMU 7.2's commands lack: number and null
// arguments, an int-bool-array alternate, an enum without "values".
const tinySchema = `[
{"name":"t","meta-type":"command","arg-type":"A","ret-type":"E"},
{"name":"A","meta-type":"object","members":[
  {"name":"num","type":"number","default":null},
  {"name":"nul","type":"null","default":null},
  {"name":"alt","type":"ALT","default":null},
  {"name":"list","type":"[int]","default":null},
  {"name":"color","type":"COLOR","default":null}]},
{"name":"ALT","meta-type":"alternate","members":[{"type":"int"},{"type":"bool"},{"type":"[int]"}]},
{"name":"[int]","meta-type":"array","element-type":"int"},
{"name":"COLOR","meta-type":"enum","members":[{"name":"red"},{"name":"green"}]},
{"name":"E","meta-type":"object","members":[]},
{"name":"int","meta-type":"builtin","json-type":"int"},
{"name":"bool","meta-type":"builtin","json-type":"boolean"},
{"name":"number","meta-type":"builtin","json-type":"number"},
{"name":"null","meta-type":"builtin","json-type":"null"}]`

func TestSchemaBuildTiny(t *testing.T) {
	s, err := qapi.Load([]byte(tinySchema))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ line, want string }{
		{"t num=0.5", `{"num":0.5}`},
		{"t num=2", `{"num":2}`},
		{"t num=-1.5e3", `{"num":-1500}`},
		{"t num=fast", `error: t: argument "num" expects a number, got "fast"`},
		{"t num=inf", `error: t: argument "num" expects a number, got "inf"`},
		{"t num=NaN", `error: t: argument "num" expects a number, got "NaN"`},
		{"t nul=null", `{"nul":null}`},
		{"t nul=nil", `error: t: argument "nul" expects null, got "nil"`},
		{"t alt=5", `{"alt":5}`},
		{"t alt=on", `{"alt":true}`},
		{"t alt=[1,2]", `{"alt":[1,2]}`},
		{"t alt=x", `error: t: argument "alt" expects an integer, a boolean or an array, got "x"`},
		{"t alt={}", `error: t: argument "alt" expects an integer, a boolean or an array, got "{}"`},
		{`t list=[1,"a"]`, `error: t: argument "list[1]" expects an integer, got "a"`},
		{`t list=[1,2.5]`, `error: t: argument "list[1]" expects an integer, got 2.5`},
		{"t color=green", `{"color":"green"}`},
		{"t color=gren", `error: t: argument "color" has invalid value "gren" (did you mean "green"?)`},
		{"t", `null`},
	} {
		cmd, err := parseTyped(s, tc.line)
		got := ""
		if err != nil {
			got = "error: " + err.Error()
		} else {
			b, _ := json.Marshal(cmd.Args)
			got = string(b)
		}
		if got != tc.want {
			t.Errorf("parseLine(%q)\n got %s\nwant %s", tc.line, got, tc.want)
		}
	}
	if got, _ := complete(s, "t color="); !slices.Equal(got, []string{"green", "red"}) {
		t.Errorf("Complete(t color=) = %q", got)
	}
	if got, _ := complete(s, "t alt="); !slices.Equal(got, []string{"false", "true"}) {
		t.Errorf("Complete(t alt=) = %q", got)
	}
	h, _ := s.Help("t")
	if !strings.Contains(h, "color (optional): enum (red, green)") || !strings.Contains(h, "alt (optional): int, bool or array of int") {
		t.Errorf("Help(t) =\n%s", h)
	}
}

func jsonEq(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// TestSchemaNumberLikeString is the acceptance case, through each
// entry point: a string argument that looks like a number stays a string.
func TestSchemaNumberLikeString(t *testing.T) {
	s := testSchema(t)
	want := map[string]any{"qom-type": "secret", "id": "s0", "data": "123"}
	cmd, err := parseTyped(s, "object-add qom-type=secret id=s0 data=123")
	if err != nil || cmd.Name != "object-add" || !reflect.DeepEqual(cmd.Args, want) {
		t.Errorf("ParseLine = %+v, %v; want %v", cmd, err, want)
	}
	args, err := parseTypedArgs(s, "object-add", []string{"qom-type=secret", "id=s0", "data=123"})
	if err != nil || !reflect.DeepEqual(args, want) {
		t.Errorf("ParseArgs = %v, %v; want %v", args, err, want)
	}
	args, err = s.Build("object-add", []qapi.KeyValue{{Key: "qom-type", Value: "secret"}, {Key: "id", Value: "s0"}, {Key: "data", Value: "123"}})
	if err != nil || !reflect.DeepEqual(args, want) {
		t.Errorf("Build = %v, %v; want %v", args, err, want)
	}
	b, _ := json.Marshal(args)
	if !strings.Contains(string(b), `"data":"123"`) {
		t.Errorf("marshalled %s lacks data:\"123\"", b)
	}
	// Without a schema, qmp-shell's guessing makes it an integer.
	cmd, err = parseLine("object-add qom-type=secret id=s0 data=123")
	if err != nil || cmd.Args["data"] != int64(123) {
		t.Errorf("ParseLine without schema: data = %#v, %v", cmd.Args["data"], err)
	}
}

func TestSchemaTransaction(t *testing.T) {
	s := testSchema(t)
	var tx transaction
	for _, line := range []string{"transaction(", "block-dirty-bitmap-add node=n name=1"} {
		if done, err := tx.add(line, s); done || err != nil {
			t.Fatalf("add(%q) = %v, %v", line, done, err)
		}
	}
	if _, err := tx.add("block-dirty-bitmap-clear node=n", s); err == nil ||
		err.Error() != `block-dirty-bitmap-clear: argument "name" is missing` {
		t.Errorf("add(missing name) error = %v", err)
	}
	if done, err := tx.add(")", s); !done || err != nil {
		t.Fatalf("add()) = %v, %v", done, err)
	}
	got, _ := json.Marshal(tx.command().Args)
	if want := `{"actions":[{"data":{"name":"1","node":"n"},"type":"block-dirty-bitmap-add"}]}`; string(got) != want {
		t.Errorf("transaction = %s, want %s", got, want)
	}
	// A nil schema is Add.
	var plain transaction
	if done, err := plain.add("transaction( block-dirty-bitmap-add node=n name=1 )", nil); !done || err != nil {
		t.Fatalf("add(nil schema) = %v, %v", done, err)
	}
	got, _ = json.Marshal(plain.command().Args)
	if want := `{"actions":[{"data":{"name":1,"node":"n"},"type":"block-dirty-bitmap-add"}]}`; string(got) != want {
		t.Errorf("transaction = %s, want %s", got, want)
	}
}

// TestSchemaWithoutTypes: a nil schema is ParseLine; a names-only schema
// guesses values but knows command names.
func TestSchemaWithoutTypes(t *testing.T) {
	var nilSchema *qapi.Schema
	for _, line := range lineSeeds {
		// What the shell and exec do: Parse, then type with no schema.
		want, werr := parseLine(line)
		var p Parser
		var got *Command
		in, gerr := p.Parse(line)
		if gerr == nil && in != nil && !p.InBlock() {
			got, gerr = in.Command(nilSchema)
		}
		if p.InBlock() {
			continue // parseLine's error for an unclosed block is its own
		}
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gerr, werr) {
			t.Errorf("Parse(%q) typed by a nil schema = %+v, %v; want %+v, %v", line, got, gerr, want, werr)
		}
	}
	if nilSchema.HasTypes() || nilSchema.Commands() != nil || nilSchema.Suggest("x") != "" {
		t.Error("nil schema knows something")
	}
	if _, err := nilSchema.Help("stop"); err == nil {
		t.Error("nil schema Help succeeded")
	}
	if got, n := complete(nilSchema, "q", "quit", "help"); !slices.Equal(got, []string{"quit"}) || n != 1 {
		t.Errorf("nil schema Complete(q) = %q, %d", got, n)
	}

	s := qapi.FromCommands([]string{"query-status", "object-add", "stop", "stop"})
	if s.HasTypes() {
		t.Error("names-only schema HasTypes")
	}
	cmd, err := parseTyped(s, "object-add qom-type=secret id=s0 data=123")
	if err != nil || cmd.Args["data"] != int64(123) {
		t.Errorf("names-only ParseLine: %+v, %v; want guessed data 123", cmd, err)
	}
	if _, err := parseTyped(s, "query-stat"); err == nil || err.Error() != `unknown command "query-stat" (did you mean "query-status"?)` {
		t.Errorf("names-only unknown command error = %v", err)
	}
	if got, n := complete(s, "st"); !slices.Equal(got, []string{"stop"}) || n != 2 {
		t.Errorf("names-only Complete(st) = %q, %d", got, n)
	}
	if got, _ := complete(s, "stop "); got != nil {
		t.Errorf("names-only Complete(stop ) = %q", got)
	}
	h, err := s.Help("stop")
	if err != nil || !strings.Contains(h, "unknown") {
		t.Errorf("names-only Help(stop) = %q, %v", h, err)
	}
	if data, err := s.BuildAction("abort", nil); err != nil || data == nil {
		t.Errorf("names-only BuildAction = %v, %v", data, err)
	}
}

// TestParseArgsMatchesParse: a line without quoting, JSON or a block is
// the same Input whether the shell's lexer or the operating system's
// shell (exec's arguments) split it, and fails where it fails.
func TestParseArgsMatchesParse(t *testing.T) {
	for _, line := range lineSeeds {
		checkParseArgs(t, line)
	}
}

func checkParseArgs(t *testing.T, line string) {
	fields := strings.Fields(line)
	if len(fields) == 0 || strings.ContainsAny(line, `"'\{[#`) || strings.Contains(line, transactionOpen) {
		return
	}
	var p Parser
	want, werr := p.Parse(line)
	got, err := ParseArgs(fields)
	// The messages differ: exec names its first argument differently.
	if !reflect.DeepEqual(got, want) || (err == nil) != (werr == nil) {
		t.Errorf("ParseArgs(%q) = %+v, %v; Parse = %+v, %v", fields, got, err, want, werr)
	}
}

func FuzzParseArgsMatchesParse(f *testing.F) {
	for _, s := range lineSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) { checkParseArgs(t, line) })
}

// FuzzSchemaParseLine: typed parsing never panics, fails with one-line
// *qapi.SyntaxError or *qapi.ValidationError errors, and yields arguments that
// encode as JSON.
func FuzzSchemaParseLine(f *testing.F) {
	s := testSchema(f)
	for _, seed := range append(slices.Clone(lineSeeds),
		"blockdev-add driver=qcow2 file.driver=file file.filename=/x backing=null",
		`blockdev-add driver=qcow2 file={"driver":"file","filename":"/x"} file.aio=native`,
		"object-add qom-type=secret id=s0 data=123",
		"chardev-add id=c0 backend.type=socket backend.data.addr.type=unix",
		"transaction( block-dirty-bitmap-add node=n name=b )",
		"block_resize node-name=n size=0x10k",
		"qom-set path=a property=b value.x.y=1") {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		cmd, err := parseTyped(s, line)
		if err != nil {
			var ve *qapi.ValidationError
			var se *qapi.SyntaxError
			if !errors.As(err, &ve) && !errors.As(err, &se) {
				t.Fatalf("parseLine(%q) error %T %v", line, err, err)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("parseLine(%q) error spans lines: %q", line, err)
			}
			return
		}
		if cmd != nil && cmd.Raw == nil {
			if _, err := json.Marshal(cmd.Args); err != nil {
				t.Fatalf("parseLine(%q) arguments do not encode: %v", line, err)
			}
		}
		complete(s, line)
		complete(s, "transaction( "+line)
	})
}

// TestInputExplain: only a command's error replies are explained.
func TestInputExplain(t *testing.T) {
	s := testSchema(t)
	in, err := ParseArgs([]string{"qom-lsit"})
	if err != nil {
		t.Fatal(err)
	}
	notFound := &qmp.ExecuteError{Class: "CommandNotFound", Desc: "The command qom-lsit has not been found"}
	want := `CommandNotFound: The command qom-lsit has not been found (did you mean "qom-list"?)`
	if got := in.Explain(s, notFound); got.Error() != want {
		t.Errorf("Explain(reply) = %q, want %q", got, want)
	}
	lost := errors.New("connection lost")
	if got := in.Explain(s, lost); got != lost {
		t.Errorf("Explain(non-reply) = %v", got)
	}
	raw, err := ParseArgs([]string{`{"execute": "qom-lsit"}`})
	if err != nil {
		t.Fatal(err)
	}
	if got := raw.Explain(s, notFound); got != error(notFound) {
		t.Errorf("Explain(raw message's reply) = %v", got)
	}
}
