//go:build !linux

package cmd

import "os/exec"

// setQEMUProcAttr does nothing where there is no parent-death signal and
// process groups may not exist: Ctrl-C at the terminal reaches QEMU too,
// and a qmpsh that dies leaves QEMU running.
func setQEMUProcAttr(cmd *exec.Cmd) {}
