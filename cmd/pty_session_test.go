//go:build linux

package cmd

import (
	"testing"

	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// TestPtySession covers what a person at a terminal sees and gets back:
// the exit status of a session, messages on lines of their own, the
// pager and completion.
func TestPtySession(t *testing.T) {
	bin := ptyBuildQmpsh(t)

	// A typo is a person's to read and fix: it does not make the whole
	// session a failure, as it does a script's.
	t.Run("FailedCommandExitsZero", func(t *testing.T) {
		sock := qmptest.StartQEMU(t)
		s := ptyStart(t, bin, "connect", "--color", "never", sock)
		s.expectPrompt(``, "(QEMU) ", "")
		s.send("query-statsu\r")
		s.expectPrompt(`CommandNotFound[^\r\n]*\r\n`+ptyControls, "(QEMU) ", "")
		s.send("\x04")
		s.expectExit(0)
	})
}
