package shell

import "testing"

func BenchmarkSchemaParseLine(b *testing.B) {
	s := testSchema(b)
	for b.Loop() {
		if _, err := parseTyped(s, "blockdev-add driver=qcow2 node-name=q file.driver=file file.filename=/x read-only=on"); err != nil {
			b.Fatal(err)
		}
	}
}
