package shell

import (
	"slices"
	"testing"
)

func TestSchemaComplete(t *testing.T) {
	s := testSchema(t)
	builtins := []string{"exit", "help", "hmp", "quit", "transaction("}
	tests := []struct {
		line string
		want []string // nil for none; a trailing "..." checks a prefix only
		n    int
	}{
		// command names, with the built-ins
		{"query-sta", []string{"query-stats", "query-stats-schemas", "query-status"}, 9},
		{"qu", []string{"query-acpi-ospm-status", "query-balloon", "..."}, 2},
		{"tr", []string{"trace-event-get-state", "trace-event-set-state", "transaction", "transaction("}, 2},
		{"he", []string{"help"}, 2},
		{"  stop", []string{"stop"}, 4},
		{"zzz", nil, 3},
		// argument names not yet given
		{"blockdev-add ", []string{"auto-read-only=", "cache.", "detect-zeroes=", "discard=", "driver=", "force-share=", "node-name=", "read-only="}, 0},
		{"blockdev-add d", []string{"detect-zeroes=", "discard=", "driver="}, 1},
		{"blockdev-add driver=file discard=unmap d", []string{"detect-zeroes=", "drop-cache="}, 1},
		{"object-add qom-type=secret ", []string{"data=", "file=", "format=", "id=", "iv=", "keyid=", "loaded="}, 0},
		{"object-add qom-type=secret id=s0 da", []string{"data="}, 2},
		{"object-add qom-type=iothread i", []string{"id="}, 1},
		{"query-status ", nil, 0},
		// the union's branch, once the discriminator is given (before or after)
		{"blockdev-add driver=file f", []string{"filename=", "force-share="}, 1},
		{"blockdev-add driver=qcow2 fi", []string{"file.", "file="}, 2},
		{"blockdev-add driver=qcow2 ba", []string{"backing.", "backing="}, 2},
		// nested keys
		{"blockdev-add c", []string{"cache."}, 1},
		{"blockdev-add cache.", []string{"cache.direct=", "cache.no-flush="}, 6},
		{"blockdev-add cache.direct=on cache.", []string{"cache.no-flush="}, 6},
		{"blockdev-add driver=qcow2 file.d", []string{"file.detect-zeroes=", "file.discard=", "file.driver="}, 6},
		{"blockdev-add driver=qcow2 file.driver=file file.fi", []string{"file.filename="}, 7},
		{"blockdev-add driver=qcow2 file.driver=file file.cache.d", []string{"file.cache.direct="}, 12},
		{"chardev-add backend.type=socket backend.data.a", []string{"backend.data.addr."}, 14},
		{"chardev-add backend.type=socket backend.data.addr.type=unix backend.data.addr.data.p", []string{"backend.data.addr.data.path="}, 24},
		{"blockdev-add node-name.", nil, 0},
		{"blockdev-add nosuch.", nil, 0},
		// values: enum members, booleans, an alternate's
		{"blockdev-add driver=q", []string{"qcow", "qcow2", "qed", "quorum"}, 1},
		{"blockdev-add driver=", []string{"blkdebug", "blklogwrites", "..."}, 0},
		{"blockdev-add driver=file aio=", []string{"io_uring", "native", "threads"}, 0},
		{"blockdev-add driver=qcow2 file.driver=file file.aio=n", []string{"native"}, 1},
		{"blockdev-add read-only=", []string{"false", "true"}, 0},
		{"blockdev-add read-only=t", []string{"true"}, 1},
		{"blockdev-add driver=qcow2 backing=", []string{"null"}, 0},
		{"blockdev-add driver=qcow2 overlap-check=n", []string{"none"}, 1},
		{"blockdev-add driver=qcow2 ov", []string{"overlap-check.", "overlap-check="}, 2},
		{"object-add qom-type=s", []string{"s390-pv-guest", "secret", "secret_keyring", "sev-guest"}, 1},
		{"object-add qom-type=secret format=", []string{"base64", "raw"}, 0},
		{"blockdev-add node-name=", nil, 0},
		{"blockdev-add driver=file cache={", nil, 0},
		{"blockdev-add nosuch=", nil, 0},
		// help, transactions
		{"help query-stat", []string{"query-stats", "query-stats-schemas", "query-status"}, 10},
		{"help BLOCK_JOB_C", []string{"BLOCK_JOB_CANCELLED", "BLOCK_JOB_COMPLETED"}, 11},
		{"help stop ", nil, 0},
		{"transaction( ", []string{")", "abort", "block-dirty-bitmap-add", "..."}, 0},
		{"transaction( block-dirty-bitmap-add n", []string{"name=", "node="}, 1},
		{"transaction( block-dirty-bitmap-add node=n ", []string{"disabled=", "granularity=", "name=", "persistent="}, 0},
		// nothing to complete
		{"nosuch-command ", nil, 0},
		{`{"execute": "qu`, nil, 0},
		{`blockdev-add driver="q`, nil, 0},
		{`blockdev-add driver='qcow2'`, nil, 0},
		{"hmp info ", nil, 0},
	}
	for _, tc := range tests {
		got, n := complete(s, tc.line, builtins...)
		if !candidatesMatch(got, tc.want) || n != tc.n {
			t.Errorf("Complete(%q) = %q, %d; want %q, %d", tc.line, got, n, tc.want, tc.n)
		}
		for _, c := range got {
			if n > len([]rune(c)) {
				t.Errorf("Complete(%q): candidate %q shorter than replaceLen %d", tc.line, c, n)
			}
		}
	}
}

func candidatesMatch(got, want []string) bool {
	if len(want) > 0 && want[len(want)-1] == "..." {
		p := want[:len(want)-1]
		return len(got) > len(p) && slices.Equal(got[:len(p)], p)
	}
	return slices.Equal(got, want)
}

func TestSchemaCompleteAction(t *testing.T) {
	s := testSchema(t)
	for _, tc := range []struct {
		line string
		want []string
		n    int
	}{
		{"", []string{")", "abort", "block-dirty-bitmap-add", "..."}, 0},
		{"block-dirty-bitmap-a", []string{"block-dirty-bitmap-add"}, 20},
		{"blockdev-backup sync=i", []string{"incremental"}, 1},
		{"drive-backup mo", []string{"mode="}, 2},
		{"transaction( abort ", nil, 0},
		{"nope ", nil, 0},
	} {
		got, n := complete(s, "transaction( "+tc.line)
		if !candidatesMatch(got, tc.want) || n != tc.n {
			t.Errorf("CompleteAction(%q) = %q, %d; want %q, %d", tc.line, got, n, tc.want, tc.n)
		}
	}
}
func BenchmarkSchemaComplete(b *testing.B) {
	s := testSchema(b)
	for b.Loop() {
		complete(s, "blockdev-add driver=qcow2 file.driver=file file.")
	}
}
