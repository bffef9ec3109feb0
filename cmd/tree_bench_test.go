package cmd

import (
	"io"
	"testing"
)

// BenchmarkNewRootCmd measures building the whole command tree, which
// every run of qmpsh pays before it parses its arguments.
func BenchmarkNewRootCmd(b *testing.B) {
	f := NewFactory(&IOStreams{In: nil, Out: io.Discard, ErrOut: io.Discard})
	for b.Loop() {
		NewRootCmd(f)
	}
}

// BenchmarkNewRootCmdExec measures building what `qmpsh exec` builds.
func BenchmarkNewRootCmdExec(b *testing.B) {
	f := NewFactory(&IOStreams{In: nil, Out: io.Discard, ErrOut: io.Discard})
	for b.Loop() {
		newRootCmd(f, "exec")
	}
}
