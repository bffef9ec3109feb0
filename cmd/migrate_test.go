package cmd

import (
	"bufio"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// migrateVM starts a small PC that has RAM to migrate, stopped (no guest
// is needed), with a second monitor; it returns both addresses.
func migrateVM(t *testing.T) (sock, second string) {
	t.Helper()
	second = filepath.Join(ptyShortTempDir(t), "second.sock")
	sock = qmptest.StartQEMU(t, "-M", "pc", "-m", "16", "-S",
		"-chardev", "socket,id=second,path="+second+",server=on,wait=off", "-mon", "chardev=second,mode=control")
	return sock, second
}

// migrationLines parses every line of migrate --wait's piped stdout as
// JSON: migrate's return value, the statuses, and the outcome last.
func migrationLines(t *testing.T, stdout string) (statuses []string, outcome, errDesc string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) < 2 || lines[0] != "{}" {
		t.Fatalf("stdout %q, want migrate's {} first", stdout)
	}
	for i, l := range lines[1:] {
		var m struct{ Status, Outcome, Error string }
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("stdout line %d is not JSON: %q (%v)", i+2, l, err)
		}
		if i == len(lines)-2 {
			if m.Outcome == "" {
				t.Fatalf("last line %q has no outcome", l)
			}
			return statuses, m.Outcome, m.Error
		}
		if m.Status == "" || m.Outcome != "" {
			t.Fatalf("line %d %q is not a status", i+2, l)
		}
		statuses = append(statuses, m.Status)
	}
	return nil, "", ""
}

// Each case migrates a VM of its own: QEMU 7.2 tidies up after a failed
// or cancelled migration after it reports the end (the yank instance of
// the migration's channel goes last), and a migration started just then
// fails with "duplicate yank instance".
func TestMigrate(t *testing.T) {
	t.Run("TimeoutIsStatus4", func(t *testing.T) {
		sock, _ := migrateVM(t)
		run(t, "", "exec", "-s", sock, "migrate-set-parameters", "max-bandwidth=1000").mustExit(t, ExitOK)
		// --timeout bounds connecting and starting the migration too:
		// enough for a loaded machine to get that far.
		r := run(t, "", "migrate", "-s", sock, "exec:cat > /dev/null", "--wait", "--timeout", "2s")
		if _, outcome, _ := migrationLines(t, r.stdout); r.code != ExitTimeout || outcome != "timeout" ||
			r.stderr != "qmpsh: migration: timed out after 2s waiting; the migration goes on\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		// It went on: cancel it, and wait until it has ended.
		run(t, "", "exec", "-s", sock, "--wait-event", "MIGRATION", "--match", "status=cancelled", "migrate_cancel").mustExit(t, ExitOK)
	})
	t.Run("CancelledFromAnotherMonitor", func(t *testing.T) {
		sock, second := migrateVM(t)
		// Slow enough to be cancelled while active.
		run(t, "", "exec", "-s", sock, "migrate-set-parameters", "max-bandwidth=1000").mustExit(t, ExitOK)
		outR, outW := io.Pipe()
		var errOut qmptest.Buffer
		done := make(chan int, 1)
		go func() {
			done <- Main([]string{"migrate", "-s", sock, "exec:cat > /dev/null", "--wait"},
				&IOStreams{In: strings.NewReader(""), Out: outW, ErrOut: &errOut})
			outW.Close()
		}()
		var out strings.Builder
		lines := bufio.NewScanner(outR)
		for lines.Scan() {
			out.WriteString(lines.Text() + "\n")
			if strings.Contains(lines.Text(), `"status":"active"`) {
				break
			}
		}
		run(t, "", "exec", "-s", second, "migrate_cancel").mustExit(t, ExitOK)
		for lines.Scan() {
			out.WriteString(lines.Text() + "\n")
		}
		code := <-done
		statuses, outcome, _ := migrationLines(t, out.String())
		if code != ExitQMPError || outcome != "cancelled" || errOut.String() != "qmpsh: migration cancelled\n" ||
			statuses[len(statuses)-1] != "cancelled" {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
		}
	})
	t.Run("FailedWithQEMUsError", func(t *testing.T) {
		sock, _ := migrateVM(t)
		r := run(t, "", "migrate", "-s", sock, "exec:exit 0", "--wait")
		statuses, outcome, desc := migrationLines(t, r.stdout)
		if r.code != ExitQMPError || outcome != "failed" || desc != "Unable to write to command: Broken pipe" ||
			r.stderr != "qmpsh: migration failed: Unable to write to command: Broken pipe\n" ||
			strings.Count(strings.Join(statuses, " "), "failed") != 1 {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("Completed", func(t *testing.T) {
		sock, _ := migrateVM(t)
		r := run(t, "", "migrate", "-s", sock, "exec:cat > /dev/null", "--wait")
		r.mustExit(t, ExitOK)
		statuses, outcome, _ := migrationLines(t, r.stdout)
		if outcome != "completed" || statuses[len(statuses)-1] != "completed" || r.stderr != "" {
			t.Fatalf("statuses %v, outcome %s, stderr %q", statuses, outcome, r.stderr)
		}
		// Without --wait: migrate's answer only. A VM that has migrated
		// cannot again: QEMU's error, status 1.
		r = run(t, "", "migrate", "-s", sock, "exec:cat > /dev/null")
		if r.code != ExitQMPError || r.stdout != "" ||
			r.stderr != "GenericError: Can't migrate the vm that was paused due to previous migration\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("Usage", func(t *testing.T) {
		sock, _ := migrateVM(t)
		for _, args := range [][]string{
			{"migrate", "-s", sock},
			{"migrate", "-s", sock, "exec:true", "--wait", "--color", "nope"},
			{"migrate", "-s", sock, "a", "b"},
			{"migrate", "-s", sock, "exec:true", "--cancel-on-interrupt"},
		} {
			if r := run(t, "", args...); r.code != ExitUsage || r.stdout != "" {
				t.Errorf("%v: exit %d, stdout %q, stderr %q; want a usage error", args, r.code, r.stdout, r.stderr)
			}
		}
	})
}

// TestMigrateInterrupt: Ctrl-C stops the wait and leaves the migration
// running, unless --cancel-on-interrupt.
func TestMigrateInterrupt(t *testing.T) {
	sock, _ := migrateVM(t)
	run(t, "", "exec", "-s", sock, "migrate-set-parameters", "max-bandwidth=1000").mustExit(t, ExitOK)
	wait := func(t *testing.T, args ...string) (code int, stdout, stderr string) {
		t.Helper()
		// Statuses are reported once the wait listens for Ctrl-C.
		return runInterrupted(t, sock, `"status":"active"`, args...)
	}

	code, stdout, stderr := wait(t, "migrate", "exec:cat > /dev/null", "--wait")
	if _, outcome, _ := migrationLines(t, stdout); code != ExitInterrupted || outcome != "interrupted" ||
		stderr != "qmpsh: interrupted: stopped waiting; the migration goes on\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	r := run(t, "", "exec", "-s", sock, "query-migrate")
	if r.code != ExitOK || !strings.Contains(r.stdout, `"status":"active"`) {
		t.Fatalf("after the interrupt: query-migrate = %q %q, want still active", r.stdout, r.stderr)
	}
	run(t, "", "exec", "-s", sock, "--wait-event", "MIGRATION", "--match", "status=cancelled", "migrate_cancel").mustExit(t, ExitOK)

	code, stdout, stderr = wait(t, "migrate", "exec:cat > /dev/null", "--wait", "--cancel-on-interrupt")
	if _, outcome, _ := migrationLines(t, stdout); code != ExitQMPError || outcome != "cancelled" ||
		stderr != "qmpsh: interrupted: cancelling the migration\nqmpsh: migration cancelled\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
