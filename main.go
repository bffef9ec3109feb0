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
	os.Exit(cmd.Main(os.Args[1:], cmd.System()))
}
