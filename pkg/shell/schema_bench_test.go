package shell

import "testing"

func BenchmarkSchemaComplete(b *testing.B) {
	s := testSchema(b)
	for b.Loop() {
		complete(s, "blockdev-add driver=qcow2 file.driver=file file.")
	}
}

func BenchmarkSchemaParseLine(b *testing.B) {
	s := testSchema(b)
	for b.Loop() {
		if _, err := parseTyped(s, "blockdev-add driver=qcow2 node-name=q file.driver=file file.filename=/x read-only=on"); err != nil {
			b.Fatal(err)
		}
	}
}
