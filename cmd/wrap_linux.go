package cmd

import (
	"os/exec"
	"syscall"
)

// setQEMUProcAttr puts QEMU in a process group of its own, so that the
// terminal's Ctrl-C (SIGINT to the foreground group) reaches qmpsh only,
// and has the kernel send it SIGTERM, which QEMU takes as a request to
// quit cleanly, should qmpsh die without quitting it.
func setQEMUProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
