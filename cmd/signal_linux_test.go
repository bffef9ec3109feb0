//go:build linux

package cmd

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// accept removes its socket when it is told to stop while waiting, by
// SIGTERM or SIGHUP as by Ctrl-C: a socket left behind would be taken for
// a live one. It then exits 128+N, as a process signal N ended.
func TestAcceptCleansUpOnSignal(t *testing.T) {
	bin := ptyBuildQmpsh(t)
	for _, tc := range []struct {
		name string
		sig  syscall.Signal
		path bool // give a path, else accept makes its own directory
	}{
		{"SIGTERM", syscall.SIGTERM, true},
		{"SIGHUP", syscall.SIGHUP, true},
		{"SIGTERMPrivateDir", syscall.SIGTERM, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runtime := t.TempDir()
			args := []string{"accept"}
			if tc.path {
				args = append(args, filepath.Join(t.TempDir(), "qmp.sock"))
			}
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+runtime)
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			lines := bufio.NewScanner(stderr)
			if !lines.Scan() {
				t.Fatal("accept printed nothing")
			}
			_, sock, ok := strings.Cut(lines.Text(), "-qmp unix:")
			if !ok {
				t.Fatalf("stderr %q does not say where to connect", lines.Text())
			}
			if fi, err := os.Lstat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 {
				t.Fatalf("no socket at %s once announced: %v", sock, err)
			}
			cmd.Process.Signal(tc.sig)
			var rest []string
			for lines.Scan() {
				rest = append(rest, lines.Text())
			}
			err = cmd.Wait()
			if _, serr := os.Lstat(sock); !os.IsNotExist(serr) {
				t.Errorf("socket left behind after %v: %v (exit: %v, stderr %q)", tc.sig, serr, err, rest)
			}
			if !tc.path {
				if _, serr := os.Lstat(filepath.Dir(sock)); !os.IsNotExist(serr) {
					t.Errorf("private directory left behind: %v", serr)
				}
			}
			if len(rest) != 1 || !strings.Contains(rest[0], "interrupted") {
				t.Errorf("stderr after the signal %q, want one line saying it was interrupted", rest)
			}
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 128+int(tc.sig) {
				t.Errorf("exit: %v, want status %d, as a process %v ended", err, 128+int(tc.sig), tc.sig)
			}
		})
	}
}

// events whose stdout is closed (| head -1) dies of SIGPIPE at its next
// line, as tail -f does, quietly, and its monitor is free again for the
// next client.
func TestEventsStdoutClosed(t *testing.T) {
	bin := ptyBuildQmpsh(t)
	sock, second := startQEMUTwoMonitors(t)
	cmd := exec.Command(bin, "-v", "events", "-s", sock)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() }) // if the test fails first
	// -v shows the negotiation: events are listened for from then on.
	traffic := bufio.NewScanner(stderr)
	for traffic.Text() != `<-- {"return": {}}` {
		if !traffic.Scan() {
			t.Fatal("qmpsh -v events ended before negotiating")
		}
	}
	run(t, "", "exec", "-s", second, "stop").mustExit(t, ExitOK)
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || !strings.Contains(line, `"event":"STOP"`) {
		t.Fatalf("first line %q, %v; want STOP", line, err)
	}
	stdout.Close() // as head -1 exits
	run(t, "", "exec", "-s", second, "cont").mustExit(t, ExitOK)
	var rest strings.Builder
	for traffic.Scan() {
		if !strings.HasPrefix(traffic.Text(), "<-- ") {
			rest.WriteString(traffic.Text() + "\n")
		}
	}
	cmd.Wait()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGPIPE || rest.Len() != 0 {
		t.Errorf("qmpsh ended %v, stderr besides traffic %q; want killed by SIGPIPE, nothing said", cmd.ProcessState, rest.String())
	}
	run(t, "", "exec", "-s", sock, "query-status").mustExit(t, ExitOK)
}
