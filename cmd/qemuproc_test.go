package cmd

import (
	"bufio"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// startScript starts a shell script as if it were QEMU, its output on a
// pipe the test reads.
func startScript(t *testing.T, script string) (*qemuProcess, *bufio.Scanner) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	// The appended -qmp option becomes the script's $0 and $1.
	p, err := startQEMU([]string{"sh", "-c", script}, "unused.sock", &qemuLog{f: w})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.kill)
	return p, bufio.NewScanner(r)
}

// A QEMU that ignores SIGTERM is killed, with a warning, and its end is
// told as a shell tells a signal's.
func TestQEMUProcessStopEscalates(t *testing.T) {
	p, out := startScript(t, `trap "" TERM; echo ready; exec sleep 1000`)
	if !out.Scan() || out.Text() != "ready" {
		t.Fatalf("script said %q, want ready", out.Text())
	}
	var warn qmptest.Buffer
	// Never connected, so there is no quit to ask for: SIGTERM first.
	p.stop(qmp.NewClient(), 50*time.Millisecond, &warn)
	if !p.exited() {
		t.Fatal("stop returned with the process running")
	}
	if want := "qmpsh: QEMU did not quit within 50ms of SIGTERM; killing it\n"; warn.String() != want {
		t.Errorf("warning %q, want %q", warn.String(), want)
	}
	if d := p.describe(); d != "QEMU was killed by signal 9 (killed)" {
		t.Errorf("describe() = %q", d)
	}
	var xe *ExitError
	if err := p.exitError(); !errors.As(err, &xe) || xe.Code != 128+9 || xe.Syntax {
		t.Errorf("exitError() = %#v, want status 137", err)
	}
}

// A QEMU that quits on SIGTERM is not killed.
func TestQEMUProcessStopTerminates(t *testing.T) {
	p, out := startScript(t, `sleep 1000 & trap 'kill $!; echo terminated; exit 0' TERM; echo ready; wait`)
	if !out.Scan() || out.Text() != "ready" {
		t.Fatalf("script said %q, want ready", out.Text())
	}
	var warn qmptest.Buffer
	p.stop(qmp.NewClient(), time.Minute, &warn)
	if !p.exited() || warn.String() != "" {
		t.Fatalf("exited %v, warning %q", p.exited(), warn.String())
	}
	if !out.Scan() || out.Text() != "terminated" {
		t.Errorf("script said %q, want terminated: SIGTERM, not SIGKILL", out.Text())
	}
	if err := p.exitError(); err != nil {
		t.Errorf("exitError() = %v, want nil for status 0", err)
	}
}

// QEMU's exit status is qmpsh's; 2 is QEMU's, so no pointer to --help.
func TestQEMUProcessExitStatus(t *testing.T) {
	p, _ := startScript(t, `exit 2`)
	<-p.done
	var xe *ExitError
	if err := p.exitError(); !errors.As(err, &xe) || xe.Code != 2 || !xe.Syntax ||
		!strings.HasPrefix(xe.Error(), "QEMU exited with status 2") {
		t.Errorf("exitError() = %#v", err)
	}
}
