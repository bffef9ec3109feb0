package qmptest

import (
	"os"
	"os/exec"
	"testing"
)

// QEMU is a QEMU started by StartQEMUAt, which the test can kill to see
// what a client does when QEMU goes away, and start again on the same
// path.
type QEMU struct {
	Path string // the QMP socket
	p    *Process
}

// StartQEMUAt is StartQEMU with the QMP socket at path, replacing a socket
// left there by an earlier QEMU; the directory must exist and the path be
// short enough for a UNIX socket.
//
// The socket appears at path only once QEMU answers on it: it is made
// under a temporary name and renamed. A client that keeps dialling path
// (one reconnecting, say) therefore cannot take the place of the probe
// connection that QEMU's wait=on waits for (see launchListening).
func StartQEMUAt(t testing.TB, path string, extraArgs ...string) *QEMU {
	t.Helper()
	bin := RequireQEMU(t, "qemu-system-x86_64")
	tmp := path + ".new"
	p, err := LaunchQEMU(bin, tmp, extraArgs...)
	if err != nil {
		t.Fatalf("qmptest: %v", err)
	}
	stopAtEnd(t, p)
	if err := os.Rename(tmp, path); err != nil {
		p.Stop()
		t.Fatalf("qmptest: %v", err)
	}
	return &QEMU{Path: path, p: p}
}

// Kill kills QEMU and waits until it has exited, so its connections are
// closed when Kill returns.
func (q *QEMU) Kill() { q.p.Stop() }

// Cmd returns the QEMU process.
func (q *QEMU) Cmd() *exec.Cmd { return q.p.cmd }
