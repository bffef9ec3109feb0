package qmptest

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill QEMU if the test binary dies without
// running its cleanups (a panic or a -timeout), so a crashed test run does
// not leave QEMU processes behind.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
