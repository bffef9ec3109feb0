package cmd

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// TestREADMEExamplesPiped runs README's shell examples for connect, exec,
// events, wrap and --reconnect (TestConnectReconnect) with stdout not a
// terminal, as `... | jq` runs them: every line of stdout must be JSON.
// Where an example needs a guest (system_powerdown's SHUTDOWN), a
// command QEMU answers without one stands in.
func TestREADMEExamplesPiped(t *testing.T) {
	qmptest.RequireQEMU(t, "qemu-system-x86_64")
	dir := ptyShortTempDir(t)
	second := filepath.Join(dir, "ev.sock")
	// A paused VM, as make demo starts, with a second monitor for events.
	sock := qmptest.StartQEMU(t, "-S",
		"-chardev", "socket,id=ev,path="+second+",server=on,wait=off", "-mon", "chardev=ev,mode=control")

	check := func(t *testing.T, r result, code int, stdoutHas ...string) {
		t.Helper()
		requireJSONLines(t, r)
		if r.code != code {
			t.Errorf("exit %d, want %d; stdout %q, stderr %q", r.code, code, r.stdout, r.stderr)
		}
		for _, s := range stdoutHas {
			if !strings.Contains(r.stdout, s) {
				t.Errorf("stdout %q lacks %q", r.stdout, s)
			}
		}
	}

	t.Run("Demo", func(t *testing.T) {
		// printf 'query-status\ncont\nquery-status\n' | make demo
		r := run(t, "query-status\ncont\nquery-status\n", "connect", sock)
		check(t, r, 0, `"status":"prelaunch"`, `"event":"RESUME"`, `"status":"running"`)
		if n := strings.Count(r.stdout, "\n"); n != 4 {
			t.Errorf("%d lines, want 4 (two results, the event, cont's result): %q", n, r.stdout)
		}
	})
	t.Run("Connect", func(t *testing.T) {
		// echo query-status | qmpsh connect /tmp/qmp.sock
		check(t, run(t, "query-status\n", "connect", sock), 0, `"status":`)
	})
	t.Run("Exec", func(t *testing.T) {
		check(t, run(t, "", "exec", "-s", sock, "query-status"), 0, `"status":`)
		t.Setenv("QMP_SOCKET", sock)
		check(t, run(t, "", "exec", "qom-get", "path=/machine", "property=type"), 0, `"none-machine"`)
		check(t, run(t, "", "exec", "-s", sock, `{"execute": "query-version"}`), 0, `"qemu":`)
		check(t, run(t, "", "exec", "-s", sock, "object-add", "qom-type=secret", "id=s0", "data=123"), 0, "{}")
	})
	t.Run("ExecHMP", func(t *testing.T) {
		// qmpsh exec hmp info status: HMP's text as one JSON string, the
		// shell's hmp line, printed as the shell prints it on a pipe
		// (HMP's "\r\n" line ends made "\n", so jq -r gives the text).
		sh := run(t, "hmp info status\n", "connect", sock)
		check(t, sh, 0, `"VM status: `)
		for _, args := range [][]string{{"hmp", "info", "status"}, {"hmp info status"}} {
			r := run(t, "", append([]string{"exec", "-s", sock}, args...)...)
			check(t, r, 0, `"VM status: `)
			if r.stdout != sh.stdout {
				t.Errorf("exec %q printed %q, the shell %q", args, r.stdout, sh.stdout)
			}
		}
	})
	t.Run("WaitEvent", func(t *testing.T) {
		// qmpsh exec -s /tmp/qmp.sock --wait-event SHUTDOWN system_powerdown
		r := run(t, "", "exec", "-s", sock, "--wait-event", "STOP", "stop")
		check(t, r, 0, `"event":"STOP"`)
		if n := strings.Count(r.stdout, "\n"); n != 2 {
			t.Errorf("%d lines, want the return value and the event: %q", n, r.stdout)
		}
	})
	t.Run("ManyVMs", func(t *testing.T) {
		// qmpsh exec -s '/run/vms/*.qmp' -s /run/vms/gone.sock query-status
		r := run(t, "", "exec", "-s", sock, "-s", filepath.Join(dir, "gone.sock"), "query-status")
		check(t, r, ExitConnection, `"class":"ConnectionError"`, `"return":{"status":`)
	})
	t.Run("Events", func(t *testing.T) {
		// qmpsh events -s /tmp/qmp.sock --name STOP --name RESUME --count 2
		done := make(chan result, 1)
		// (--timeout only bounds a broken run.)
		go func() {
			done <- run(t, "", "events", "-s", second, "--name", "STOP", "--name", "RESUME", "--count", "2", "--timeout", "30s")
		}()
		// Until events has seen two: it may connect after the first pair.
		var r result
		for ended := false; !ended; {
			run(t, "", "exec", "-s", sock, "cont")
			run(t, "", "exec", "-s", sock, "stop")
			select {
			case r = <-done:
				ended = true
			default:
			}
		}
		check(t, r, 0)
		if n := strings.Count(r.stdout, "\n"); n != 2 {
			t.Errorf("%d lines, want 2 events: %q", n, r.stdout)
		}
	})
	t.Run("EventsTimeout", func(t *testing.T) {
		// qmpsh events -s /tmp/qmp.sock --timeout 1m | jq -r .event
		check(t, run(t, "", "events", "-s", second, "--timeout", "100ms"), ExitTimeout)
	})
	t.Run("Wrap", func(t *testing.T) {
		// echo query-status | qmpsh wrap -- qemu-system-x86_64 -M none -display none
		wrapDirs(t)
		check(t, run(t, "query-status\n", "wrap", "--", "qemu-system-x86_64", "-M", "none", "-display", "none"), 0, `"status":"running"`)
	})
}

// TestMakeDemoPiped runs README's `printf ... | make demo`: stdout holds
// the shell's JSON lines only, the build's command line and the demo's
// notice go to stderr.
func TestMakeDemoPiped(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: builds qmpsh with make")
	}
	requireTool(t, "make")
	qmptest.RequireQEMU(t, "qemu-system-x86_64")
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("make", "-C", root, "--no-print-directory", "demo", "BIN="+filepath.Join(t.TempDir(), "qmpsh"))
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !slices.Contains([]string{"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}, k) {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stdin = strings.NewReader("query-status\ncont\nquery-status\n")
	var out, errOut qmptest.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	r := result{stdout: out.String(), stderr: errOut.String()}
	if err != nil {
		t.Fatalf("make demo: %v\nstdout %q\nstderr %q", err, r.stdout, r.stderr)
	}
	requireJSONLines(t, r)
	if n := strings.Count(r.stdout, "\n"); n != 4 || !strings.Contains(r.stdout, `"status":"prelaunch"`) {
		t.Errorf("stdout %q: want two results, the RESUME event and cont's result", r.stdout)
	}
	if !strings.Contains(r.stderr, "qmpsh demo: QEMU (pid ") {
		t.Errorf("stderr %q lacks the demo's notice", r.stderr)
	}
}

// TestREADMEExitStatusTable: the exit-status table of README's Commands
// section names every status qmpsh exits with, one row each.
func TestREADMEExitStatusTable(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n## Commands")
	j := strings.Index(s[i+1:], "\n### Exit status\n")
	if i < 0 || j < 0 {
		t.Fatal("README has no ### Exit status under ## Commands")
	}
	table := s[i+1+j+1:]
	if k := strings.Index(table, "\n\n|"); k >= 0 {
		table = table[k+2:]
	}
	if k := strings.Index(table, "\n\n"); k >= 0 {
		table = table[:k]
	}
	for _, code := range []int{ExitOK, ExitQMPError, ExitUsage, ExitConnection, ExitTimeout, ExitInterrupted} {
		row := regexp.MustCompile(`(?m)^\| ` + strconv.Itoa(code) + ` +\| \S`)
		if !row.MatchString(table) {
			t.Errorf("README's exit-status table has no row for status %d:\n%s", code, table)
		}
	}
}
