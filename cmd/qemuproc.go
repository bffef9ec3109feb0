package cmd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/qmpsh/qmpsh/pkg/protocol"
	"github.com/qmpsh/qmpsh/pkg/qmp"
)

// qemuProcess is the QEMU that wrap runs, and the goroutine that waits
// for it: started with its output in a log file, ended by asking it to
// quit, then SIGTERM, then SIGKILL, and its end told as a shell tells a
// command's.
type qemuProcess struct {
	cmd  *exec.Cmd
	log  *qemuLog
	done chan struct{} // closed once QEMU has exited and been reaped
	err  error         // Wait's, once done is closed
}

// startQEMU starts the command line argv with -qmp unix:sock appended,
// output to log, input from /dev/null, in a process group of its own and
// (on Linux) with a signal for when qmpsh dies.
func startQEMU(argv []string, sock string, log *qemuLog) (*qemuProcess, error) {
	args := append(argv[1:len(argv):len(argv)],
		"-qmp", "unix:"+strings.ReplaceAll(sock, ",", ",,")) // QEMU's option syntax doubles commas
	cmd := exec.Command(argv[0], args...)
	cmd.Stdout = log.f
	cmd.Stderr = log.f
	var redacting *redactingWriter
	if secrets := qemuSecrets(argv); len(secrets) > 0 {
		// The command line carries a secret, which QEMU's output may
		// repeat: the output passes through qmpsh, which takes the
		// secrets out before it reaches the log on disk.
		redacting = newRedactingWriter(log.f, secrets)
		cmd.Stdout, cmd.Stderr = redacting, redacting
		// A child of QEMU's holding the pipe must not hold up Wait.
		cmd.WaitDelay = time.Second
	}
	setQEMUProcAttr(cmd)
	p := &qemuProcess{cmd: cmd, log: log, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Linux sends the parent-death signal when the thread that
		// started the child ends, not the process: keep this thread for
		// as long as QEMU runs.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		if redacting != nil {
			redacting.flush()
		}
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

func (p *qemuProcess) pid() int { return p.cmd.Process.Pid }

// exited tells whether QEMU has exited and been reaped.
func (p *qemuProcess) exited() bool { return closed(p.done) }

// closed reports whether ch is closed, without waiting.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// waitFor waits up to d for QEMU to exit, and tells whether it has.
func (p *qemuProcess) waitFor(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

func (p *qemuProcess) signal(sig os.Signal) error {
	if p.exited() {
		return nil
	}
	return p.cmd.Process.Signal(sig)
}

// kill kills QEMU, if it runs, and waits until it is reaped.
func (p *qemuProcess) kill() {
	p.signal(os.Kill)
	<-p.done
}

// exitCode is QEMU's exit status as a shell reports it: 128+N when
// signal N killed it. Valid once done is closed.
func (p *qemuProcess) exitCode() int {
	ps := p.cmd.ProcessState
	if ps == nil {
		return ExitConnection
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// stop asks QEMU to quit over client, then with SIGTERM, then kills it,
// waiting timeout after each, and reaps it. warn hears of the kill.
func (p *qemuProcess) stop(client *qmp.Client, timeout time.Duration, warn io.Writer) {
	if client.Runstate() == protocol.Running {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		_, err := client.Execute(ctx, "quit", nil)
		cancel()
		var ee *qmp.ExecuteError
		var se *protocol.StateError
		var de *qmp.DisconnectedError
		notSent := errors.As(err, &se) || errors.As(err, &de) && de.NotSent
		// A lost reply is normal: QEMU may hang up before it is read.
		if !errors.As(err, &ee) && !notSent && p.waitFor(timeout) {
			return
		}
	}
	if p.signal(syscall.SIGTERM) == nil {
		if p.waitFor(timeout) {
			return
		}
		fmt.Fprintf(warn, "qmpsh: QEMU did not quit within %v of SIGTERM; killing it\n", timeout)
	}
	p.kill()
}

// exitError is QEMU's end as qmpsh's exit status, nil if it exited 0.
// Valid once done is closed.
func (p *qemuProcess) exitError() error {
	code := p.exitCode()
	if code == 0 {
		return nil
	}
	return &ExitError{Code: code, Err: fmt.Errorf("%s%s", p.describe(), p.log.where()),
		Syntax: code == ExitUsage} // no pointer to --help: it is QEMU's status
}

// describe says how QEMU ended, once done is closed.
func (p *qemuProcess) describe() string {
	ps := p.cmd.ProcessState
	if ps == nil {
		return fmt.Sprintf("QEMU: %v", p.err)
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Sprintf("QEMU was killed by signal %d (%v)", int(ws.Signal()), ws.Signal())
	}
	return fmt.Sprintf("QEMU exited with status %d", ps.ExitCode())
}

// qemuLog is the file QEMU's output goes to.
type qemuLog struct {
	f     *os.File
	name  string
	start int64 // its size before QEMU started
	temp  bool  // ours: removed if QEMU wrote nothing
}

func openQEMULog(name string) (*qemuLog, error) {
	if name == "" {
		f, err := os.CreateTemp("", "qmpsh-wrap-*.log")
		if err != nil {
			return nil, &ExitError{Code: ExitConnection, Err: fmt.Errorf("creating QEMU's log file: %w", err)}
		}
		return &qemuLog{f: f, name: f.Name(), temp: true}, nil
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, &ExitError{Code: ExitUsage, Err: fmt.Errorf("--qemu-log: %w", err)}
	}
	l := &qemuLog{f: f, name: name}
	if fi, err := f.Stat(); err == nil {
		l.start = fi.Size()
	}
	return l, nil
}

// written is how much QEMU has written to the log.
func (l *qemuLog) written() int64 {
	fi, err := os.Stat(l.name)
	if err != nil {
		return 0
	}
	return fi.Size() - l.start
}

// where names the log in a message, if QEMU wrote anything to it.
func (l *qemuLog) where() string {
	if l.written() <= 0 {
		return ""
	}
	return "; its output is in " + l.name
}

// lastMessage is ": " and the last error QEMU reported in the log
// ("qemu-system-x86_64: -M foo: unsupported machine type"), else its last
// line, or "" if it wrote nothing.
func (l *qemuLog) lastMessage(prog string) string {
	const tail = 8 << 10
	n := l.written()
	if n <= 0 {
		return ""
	}
	off := l.start
	if n > tail {
		off += n - tail
	}
	f, err := os.Open(l.name)
	if err != nil {
		return ""
	}
	defer f.Close()
	var last, lastError string
	sc := bufio.NewScanner(io.NewSectionReader(f, off, tail))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		last = line
		if strings.HasPrefix(line, prog+": ") && !strings.HasPrefix(line, prog+": warning:") {
			lastError = line
		}
	}
	if lastError != "" {
		return ": " + lastError
	}
	if last != "" {
		return ": " + last
	}
	return ""
}

// finish closes the log, and removes a temporary one QEMU wrote nothing to.
func (l *qemuLog) finish() {
	l.f.Close()
	if l.temp && l.written() <= 0 {
		os.Remove(l.name)
	}
}
