package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"
)

// peakRSS runs p once under ptrace, stops it as it exits, while its
// memory still exists, and returns its VmHWM then.
func (p *prog) peakRSS(env []string) (float64, error) {
	// The tracer is the thread that started the process: every ptrace
	// and wait4 call must come from it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// Read and write: it is the program's stdout too, and qmpsh exits
	// 1 when its results cannot be written.
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	proc, err := os.StartProcess(p.bin, append([]string{p.bin}, p.args...), &os.ProcAttr{
		Env:   env,
		Files: []*os.File{devnull, devnull, os.Stderr},
		Sys:   &syscall.SysProcAttr{Ptrace: true, Pdeathsig: syscall.SIGKILL},
	})
	if err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOSYS) {
			return 0, fmt.Errorf("%w: %v", errNoPtrace, err)
		}
		return 0, err
	}
	defer proc.Release()
	pid := proc.Pid
	kill := time.AfterFunc(runTimeout, func() { syscall.Kill(pid, syscall.SIGKILL) })
	defer kill.Stop()
	hwm := -1.0
	first := true
	for {
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
			return 0, fmt.Errorf("%s: wait4: %w", p.name, err)
		}
		switch {
		case ws.Exited() || ws.Signaled():
			switch {
			case ws.Signaled() || ws.ExitStatus() != 0:
				return 0, fmt.Errorf("%s (traced): %v", p.name, ws)
			case hwm < 0:
				return 0, fmt.Errorf("%s (traced): exited without stopping at exit", p.name)
			}
			return hwm, nil
		case !ws.Stopped():
			continue
		}
		sig := 0
		switch {
		case first:
			// The SIGTRAP of exec: from now on, stop at exit.
			first = false
			if err := syscall.PtraceSetOptions(pid, syscall.PTRACE_O_TRACEEXIT); err != nil {
				syscall.Kill(pid, syscall.SIGKILL)
				return 0, fmt.Errorf("%s: ptrace: %w", p.name, err)
			}
		case ws.StopSignal() == syscall.SIGTRAP && ws.TrapCause() == syscall.PTRACE_EVENT_EXIT:
			if hwm, err = vmHWM(pid); err != nil {
				syscall.Kill(pid, syscall.SIGKILL)
				return 0, err
			}
		default:
			// A signal for the process (the Go runtime's SIGURG,
			// say): deliver it.
			sig = int(ws.StopSignal())
		}
		if err := syscall.PtraceCont(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			syscall.Kill(pid, syscall.SIGKILL)
			return 0, fmt.Errorf("%s: ptrace: %w", p.name, err)
		}
	}
}
