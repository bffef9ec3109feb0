//go:build linux

package cmd

import (
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

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

// TestPtyStdoutPiped types at the shell on a terminal with its output
// piped (qmpsh connect SOCK | tee log): stdout gets the results only, the
// banner goes to stderr.
func TestPtyStdoutPiped(t *testing.T) {
	bin := ptyBuildQmpsh(t)
	sock := qmptest.StartQEMU(t)
	master, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	defer master.Close()
	cmd := exec.Command(bin, "connect", sock)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_STATE_HOME="+t.TempDir())
	out := new(qmptest.Buffer)
	var errOut qmptest.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, out, &errOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	// Drain the terminal: readline echoes what is typed there.
	go io.Copy(io.Discard, master)
	s := &ptySession{t: t, pty: master}
	// Nothing is written when readline starts reading (the prompt is
	// not drawn on a pipe): poll the terminal's mode, which it sets.
	waitRaw := func() {
		t.Helper()
		deadline := time.After(ptyTimeout)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for !s.rawMode() {
			select {
			case <-tick.C:
			case <-deadline:
				t.Fatal("readline never read a line")
			}
		}
	}
	waitRaw()
	master.Write([]byte("query-status\r"))
	out.WaitFor(t, `"status":"running"`, 1)
	waitRaw()
	master.Write([]byte("\x04"))
	if err := cmd.Wait(); err != nil {
		t.Fatalf("qmpsh: %v; stderr %q", err, errOut.String())
	}
	requireJSONLines(t, result{stdout: out.String(), stderr: errOut.String()})
	if !strings.Contains(errOut.String(), "Connected to QEMU ") {
		t.Errorf("stderr %q lacks the banner", errOut.String())
	}
}

// TestPtyWrapQuitReplyFirst: QEMU answers a quit typed under wrap, then
// hangs up; the answer comes before the notice of the lost connection.
func TestPtyWrapQuitReplyFirst(t *testing.T) {
	bin := ptyBuildQmpsh(t)
	wrapDirs(t)
	for range 3 {
		s := ptyStart(t, bin, append([]string{"--color", "never", "wrap", "--"}, wrapQEMU...)...)
		s.expectPrompt(``, "(QEMU) ", "")
		s.send(`{"execute": "quit"}` + "\r")
		s.expect(`\{ "return": \{ \} \}\r\n` + ptyControls + `connection lost: connection closed by peer\r\n`)
		s.expectExit(0)
	}
}
