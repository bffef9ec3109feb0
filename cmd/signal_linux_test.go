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
// a live one.
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
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != ExitConnection {
				t.Errorf("exit: %v, want status %d", err, ExitConnection)
			}
		})
	}
}
