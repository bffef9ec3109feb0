// Command qmpsh is a shell for the QEMU Machine Protocol. See README.md.
package main

import (
	"os"
	"runtime"

	"github.com/qmpsh/qmpsh/cmd"
)

func main() {
	// qmpsh writes no heap profiles; sampling allocations for one costs
	// a stack walk now and then, over cold pages of the binary's tables,
	// which a one-shot command such as exec feels.
	runtime.MemProfileRate = 0
	growStack(len(os.Args))
	os.Exit(cmd.Main(os.Args[1:], cmd.System()))
}

// growStack grows the main goroutine's stack to 16 KiB while it is only
// a few frames deep. Go starts a goroutine with a small stack and
// doubles it by copying when a call needs more, walking every frame on
// it and reading the binary's tables for each. qmpsh exec needed the
// copy deep inside cobra and the client, some 20 frames over pages of
// those tables not touched yet: about 0.5 ms, 4% of the whole process
// (`qmpsh-bench proc`). Here the copy walks three frames.
//
//go:noinline
func growStack(n int) byte {
	var frame [12 << 10]byte
	frame[n%len(frame)] = 1 // a use, so that the frame is kept
	return frame[(n*7)%len(frame)]
}
