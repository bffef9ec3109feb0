//go:build linux

package cmd

import (
	"testing"

	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// ptyNoPrompt matches what readline may write between an entered line and
// the output that follows it: control sequences and carriage returns, but
// no prompt. A prompt drawn there would leave the output on the prompt's
// line, as if typed after it.
const ptyNoPrompt = `(?:\x1b\[[0-9;?]*[A-Za-z]|\r)*`

// TestPtyTransactionResultBeforePrompt closes many transactions in a row:
// each one's result must come before the next prompt, never after a
// prompt drawn when the block closed.
func TestPtyTransactionResultBeforePrompt(t *testing.T) {
	bin := ptyBuildQmpsh(t)
	sock := qmptest.StartQEMU(t)
	s := ptyStart(t, bin, "connect", "--color", "never", sock)
	s.expectPrompt(``, "(QEMU) ", "")
	for range 30 {
		s.send("transaction(\r")
		s.expectPrompt(``, "transaction> ", "")
		s.send(")\r")
		// The block's last line, redrawn as it was typed, then the
		// result, then the prompt.
		s.expect(`^(?:` + ptyNoPrompt + `transaction> \)?(?: \x08)?)*\r\n` + ptyNoPrompt + `\{ \}\r\n`)
		s.expectPrompt(``, "(QEMU) ", "")
	}
	s.send("\x04")
	s.expectExit(0)
}
