// Command qmpsh is a shell for the QEMU Machine Protocol. See README.md.
package main

import (
	"os"

	"github.com/qmpsh/qmpsh/cmd"
)

func main() {
	os.Exit(cmd.Main(os.Args[1:], cmd.System()))
}
