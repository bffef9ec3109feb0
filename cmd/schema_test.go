package cmd

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// TestSchemaCommand runs qmpsh schema against QEMU and qemu-storage-daemon.
func TestSchemaCommand(t *testing.T) {
	sock := qmptest.StartQEMU(t)

	t.Run("Help", func(t *testing.T) {
		r := runTTY(t, "", "schema", "-s", sock, "query-status")
		want := "query-status (command)\n\nArguments: none\n\nReturns: object\n  running: bool\n"
		if r.code != ExitOK || !strings.HasPrefix(r.stdout, want) || !strings.Contains(r.stdout, "  status: enum (debug, ") {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("HelpEvent", func(t *testing.T) {
		runTTY(t, "", "schema", "-s", sock, "STOP").expect(t, ExitOK, "STOP (event)\n\nData: none\n", "")
	})
	t.Run("List", func(t *testing.T) {
		r := runTTY(t, "", "schema", "-s", sock)
		for _, w := range []string{"Commands:\n", "\n  query-status\n", "\nEvents:\n", "\n  STOP\n"} {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("list lacks %q", w)
			}
		}
		if r.code != ExitOK || !strings.HasPrefix(r.stdout, "Commands:\n") {
			t.Fatalf("exit %d, stdout %.200q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("JSON", func(t *testing.T) {
		r := run(t, "", "schema", "-s", sock, "--json", "query-status")
		var entries []struct {
			Name     string `json:"name"`
			MetaType string `json:"meta-type"`
			RetType  string `json:"ret-type"`
		}
		if r.code != ExitOK || json.Unmarshal([]byte(r.stdout), &entries) != nil || len(entries) < 3 {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		if e := entries[0]; e.Name != "query-status" || e.MetaType != "command" || e.RetType == "" {
			t.Errorf("first entry %+v, want query-status's", e)
		}
		r = run(t, "", "schema", "-s", sock, "--json")
		var list struct{ Commands, Events []string }
		if r.code != ExitOK || json.Unmarshal([]byte(r.stdout), &list) != nil ||
			!contains(list.Commands, "query-status") || !contains(list.Events, "STOP") {
			t.Fatalf("exit %d, stdout %.200q", r.code, r.stdout)
		}
	})
	t.Run("Piped", func(t *testing.T) {
		// On a pipe, schema prints what --json prints: one line each.
		for _, args := range [][]string{{"query-status"}, {}} {
			r := run(t, "", append([]string{"schema", "-s", sock}, args...)...)
			requireJSONLines(t, r)
			if r.code != ExitOK || strings.Count(r.stdout, "\n") != 1 {
				t.Fatalf("schema %v: exit %d, stdout %.200q, stderr %q", args, r.code, r.stdout, r.stderr)
			}
			if j := run(t, "", append([]string{"schema", "-s", sock, "--json"}, args...)...); j.stdout != r.stdout {
				t.Errorf("schema %v on a pipe %.200q, with --json %.200q", args, r.stdout, j.stdout)
			}
		}
	})
	t.Run("UnknownName", func(t *testing.T) {
		run(t, "", "schema", "-s", sock, "qurey-status").expect(t, ExitQMPError, "",
			"qmpsh: unknown command or event \"qurey-status\" (did you mean \"query-status\"?)\n")
	})
	t.Run("TooManyNames", func(t *testing.T) {
		r := run(t, "", "schema", "-s", sock, "a", "b")
		if r.code != ExitUsage {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("StorageDaemon", func(t *testing.T) {
		sd := qmptest.StartStorageDaemon(t)
		r := runTTY(t, "", "schema", "-s", sd, "blockdev-add")
		if r.code != ExitOK || !strings.HasPrefix(r.stdout, "blockdev-add (command") ||
			!strings.Contains(r.stdout, "node-name") {
			t.Fatalf("exit %d, stdout %.300q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
}

// runTTY runs qmpsh as run does, but with stdout a terminal, as a person
// runs it.
func runTTY(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errOut qmptest.Buffer
	ios := &IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut, OutTTY: true}
	code := Main(args, ios)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestExecTyped checks exec's typing by the schema, fetched only when a
// value needs it, and its explanation of QEMU's error replies.
func TestExecTyped(t *testing.T) {
	sock := qmptest.StartQEMU(t)

	t.Run("NumberLikeStringStaysString", func(t *testing.T) {
		// qmp-shell's guessing would send 123 and QEMU would answer
		// "Invalid parameter type for 'data', expected: string". -v
		// hides a secret's data, but shows the schema being fetched.
		r := run(t, "", "exec", "-v", "-s", sock, "object-add", "qom-type=secret", "id=s0", "data=123")
		if r.code != ExitOK || r.stdout != "{}\n" || !strings.Contains(r.stderr, `"query-qmp-schema"`) {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("SizeSuffixAndHex", func(t *testing.T) {
		r := run(t, "", "exec", "-s", sock, "blockdev-add", "driver=null-co", "node-name=n1", "size=1G", "read-zeroes=on")
		if r.code != ExitOK {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		r = run(t, "", "exec", "-s", sock, "query-named-block-nodes", "flat=yes")
		if r.code != ExitOK || !strings.Contains(r.stdout, `"virtual-size":1073741824`) {
			t.Fatalf("exit %d, stdout %.300q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("NoSchemaWhenNotNeeded", func(t *testing.T) {
		r := run(t, "", "exec", "-v", "-s", sock, "qom-get", "path=/machine", "property=type")
		if r.code != ExitOK || strings.Contains(r.stderr, "query-qmp-schema") {
			t.Fatalf("exit %d, stderr %q: want no schema fetched", r.code, r.stderr)
		}
	})
	t.Run("WrongTypeSendsNothing", func(t *testing.T) {
		// 2 could be an integer: exec fetches the schema, which says
		// read-zeroes is a boolean, and sends nothing.
		r := run(t, "", "exec", "-v", "-s", sock, "blockdev-add", "driver=null-co", "node-name=n2", "read-zeroes=2")
		if r.code != ExitUsage || strings.Contains(r.stderr, `--> {"execute":"blockdev-add"`) ||
			!strings.HasSuffix(r.stderr, "\nqmpsh: blockdev-add: argument \"read-zeroes\" expects a boolean (true/false, on/off, yes/no), got \"2\"\n") {
			t.Fatalf("exit %d, stderr %.300q...%q", r.code, r.stderr, r.stderr[max(0, len(r.stderr)-300):])
		}
	})
	t.Run("WrongTypeExplained", func(t *testing.T) {
		// maybe is a string however typed: exec sends it without the
		// schema and explains QEMU's error with it.
		run(t, "", "exec", "-s", sock, "blockdev-add", "driver=null-co", "node-name=n2", "read-zeroes=maybe").expect(t, ExitQMPError, "",
			"GenericError: Invalid parameter type for 'read-zeroes', expected: boolean (argument \"read-zeroes\" expects a boolean (true/false, on/off, yes/no), got \"maybe\")\n")
	})
	t.Run("BadEnumSuggests", func(t *testing.T) {
		run(t, "", "exec", "-s", sock, "blockdev-add", "driver=null-cox", "node-name=1").expect(t, ExitUsage, "",
			"qmpsh: blockdev-add: argument \"driver\" has invalid value \"null-cox\" (did you mean \"null-co\"?)\n")
	})
	t.Run("StringValueLikeBadJSON", func(t *testing.T) {
		// {abc is no JSON, but data is a str argument: exec sends it as
		// typed, as the shell does.
		run(t, "", "exec", "-s", sock, "object-add", "qom-type=secret", "id=s1", "data={abc").expect(t, ExitOK, "{}\n", "")
		run(t, "", "exec", "-s", sock, "blockdev-add", "driver=null-co", "node-name=n4", "size={x").expect(t, ExitUsage, "",
			"qmpsh: blockdev-add: argument \"size\" expects an integer, got \"{x\"\n")
	})
	t.Run("UnknownArgumentExplained", func(t *testing.T) {
		run(t, "", "exec", "-s", sock, "blockdev-add", "driver=null-co", "nodename=n3").expect(t, ExitQMPError, "",
			"GenericError: Parameter 'nodename' is unexpected (unknown argument \"nodename\"; did you mean \"node-name\"?)\n")
	})
	t.Run("CommandNotFoundExplained", func(t *testing.T) {
		run(t, "", "exec", "-s", sock, "qom-lsit", "path=/").expect(t, ExitQMPError, "",
			"CommandNotFound: The command qom-lsit has not been found (did you mean \"qom-list\"?)\n")
	})
}

// TestConnectPipedTyped checks the shell's typing and validation by the
// schema: a line the schema rejects is not sent.
func TestConnectPipedTyped(t *testing.T) {
	sock := qmptest.StartQEMU(t)

	t.Run("NumberLikeStringStaysString", func(t *testing.T) {
		run(t, "object-add qom-type=secret id=s0 data=123\nobject-del id=s0\n", "connect", sock).
			expect(t, ExitOK, "{}\n{}\n", "")
	})
	t.Run("ValidationSendsNothing", func(t *testing.T) {
		r := run(t, "blockdev-add driver=null-co nodename=n0\nobject-add qom-type=secret\nblockdev-add driver=null-cox node-name=x\nquery-status\n",
			"connect", "-v", sock)
		want := []string{
			`blockdev-add: unknown argument "nodename" (did you mean "node-name"?)`,
			`object-add: argument "id" is missing`,
			`blockdev-add: argument "driver" has invalid value "null-cox" (did you mean "null-co"?)`,
		}
		for _, w := range want {
			if !strings.Contains(r.stderr, w+"\n") {
				t.Errorf("stderr lacks %q", w)
			}
		}
		// -v shows the traffic on stderr when piped.
		if r.code != ExitQMPError || strings.Contains(r.stderr, `--> {"execute":"blockdev-add"`) || strings.Contains(r.stderr, `--> {"execute":"object-add"`) ||
			!strings.Contains(r.stderr, `--> {"execute":"query-status"`) || !strings.Contains(r.stdout, `"status":"running"`) {
			t.Fatalf("exit %d, stdout %.2000q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("NoNegotiateTypesAfterCapabilities", func(t *testing.T) {
		// Before qmp_capabilities QEMU refuses query-qmp-schema too; the
		// schema is asked for again once the line negotiates.
		line := "blockdev-add driver=null-co nodename=n0\n"
		r := run(t, line+"qmp_capabilities\n"+line, "connect", "--no-negotiate", sock)
		want := `blockdev-add: unknown argument "nodename" (did you mean "node-name"?)` + "\n"
		if r.code != ExitQMPError || !strings.HasPrefix(r.stderr, "CommandNotFound: Expecting capabilities negotiation") ||
			!strings.HasSuffix(r.stderr, want) || r.stdout != "{}\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("CommandNotFoundExplained", func(t *testing.T) {
		run(t, "qom-lsit path=/\n", "connect", sock).expect(t, ExitQMPError, "",
			"CommandNotFound: The command qom-lsit has not been found (did you mean \"qom-list\"?)\n")
	})
	t.Run("TransactionTyped", func(t *testing.T) {
		r := run(t, "blockdev-add driver=null-co node-name=n9\ntransaction(\nblock-dirty-bitmap-add node=n9 name=123 granularity=0x10000\n)\n",
			"connect", "-v", sock)
		sent := `--> {"execute":"transaction","arguments":{"actions":[{"data":{"granularity":65536,"name":"123","node":"n9"},"type":"block-dirty-bitmap-add"}]}`
		if r.code != ExitOK || r.stdout != "{}\n{}\n" || !strings.Contains(r.stderr, sent) {
			t.Fatalf("exit %d, stdout %q, stderr ...%q", r.code, r.stdout, r.stderr[max(0, len(r.stderr)-600):])
		}
	})
}
