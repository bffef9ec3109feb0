//go:build !linux

package qmptest

import "os/exec"

// setDeathSignal does nothing where there is no parent-death signal; the
// test's cleanup still kills QEMU on a normal exit.
func setDeathSignal(cmd *exec.Cmd) {}
