package cmd

import (
	"bytes"
	"encoding/base64"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/qmpsh/qmpsh/pkg/ga/gatest"
	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// mustBe fails t unless the file name holds want with permission bits perm.
func mustBe(t *testing.T, name, want string, perm os.FileMode) {
	t.Helper()
	got, err := os.ReadFile(name)
	if err != nil || string(got) != want {
		t.Errorf("%s holds %q, %v; want %q", name, got, err, want)
	}
	if fi, err := os.Lstat(name); err != nil || fi.Mode() != perm {
		t.Errorf("%s: %v, %v; want mode %v", name, fi, err, perm)
	}
}

// noTemporaries fails t if ga cp left a temporary file in dir.
func noTemporaries(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".qmpsh-") {
			t.Errorf("a temporary file was left: %s", e.Name())
		}
	}
}

// A copy out that fails leaves the local destination as it was: a file
// (whether nothing was read, the agent unreachable or the guest file
// missing, or the copy failed half-way), or a device, which is never
// removed. One that succeeds replaces a file, keeping its permission
// bits, through a symlink to it.
func TestGACopyOutFailureKeepsLocal(t *testing.T) {
	a := gatest.StartAgent(t)
	local := t.TempDir()
	keep := filepath.Join(local, "keep.txt")
	if err := os.WriteFile(keep, []byte("precious\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	os.Chmod(keep, 0o640) // whatever the umask
	missing := ":" + filepath.Join(a.Dir, "does-not-exist")
	run(t, "", "ga", "cp", "-s", a.Path, missing, keep).mustSay(t, ExitQMPError, "No such file")
	mustBe(t, keep, "precious\n", 0o640)
	run(t, "", "ga", "cp", "-s", filepath.Join(local, "no-agent.sock"), ":/etc/hostname", keep).mustSay(t, ExitConnection, "no-agent.sock")
	mustBe(t, keep, "precious\n", 0o640)

	// A device: a twin of /dev/full, as root can make it.
	full := filepath.Join(local, "full")
	if err := unix.Mknod(full, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 7))); err == nil {
		run(t, "", "ga", "cp", "-s", a.Path, missing, full).mustSay(t, ExitQMPError, "No such file")
		small := filepath.Join(a.Dir, "small")
		os.WriteFile(small, []byte("hello\n"), 0o600)
		run(t, "", "ga", "cp", "-s", a.Path, ":"+small, full).mustSay(t, ExitQMPError, "writing "+full, "no space left on device")
		if fi, err := os.Lstat(full); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
			t.Errorf("the device %s: %v, %v", full, fi, err)
		}
	} else {
		t.Logf("no device node (%v): not copying to one", err)
	}

	// Success replaces the file, mode kept, through a symlink.
	guest := filepath.Join(a.Dir, "new")
	os.WriteFile(guest, []byte("new content\n"), 0o600)
	link := filepath.Join(local, "link")
	os.Symlink("keep.txt", link)
	run(t, "", "ga", "cp", "-s", a.Path, ":"+guest, link).expect(t, ExitOK, "", "")
	mustBe(t, keep, "new content\n", 0o640)
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symlink was replaced: %v, %v", fi, err)
	}
	empty := filepath.Join(a.Dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	run(t, "", "ga", "cp", "-s", a.Path, ":"+empty, keep).expect(t, ExitOK, "", "")
	mustBe(t, keep, "", 0o640)
	noTemporaries(t, local)
	if n, err := a.OpenFiles(a.Dir); err != nil || n != 0 {
		t.Errorf("the agent has %d files open in the guest directory (%v); want 0", n, err)
	}
}

// The guest file fails half-way through: what was written goes, what was
// there before stays.
func TestGACopyOutFailsHalfWay(t *testing.T) {
	reads := 0
	f := gatest.StartFake(t, func(req gatest.Request) map[string]any {
		switch req.Execute {
		case "guest-file-open":
			return map[string]any{"return": 3}
		case "guest-file-read":
			if reads++; reads == 1 {
				return map[string]any{"return": map[string]any{"count": 5, "buf-b64": base64.StdEncoding.EncodeToString([]byte("abcde")), "eof": false}}
			}
			return map[string]any{"error": map[string]any{"class": "GenericError", "desc": "Input/output error"}}
		case "guest-file-close":
			return map[string]any{"return": map[string]any{}}
		}
		return map[string]any{"error": map[string]any{"class": "CommandNotFound", "desc": req.Execute}}
	})
	local := t.TempDir()
	keep := filepath.Join(local, "keep")
	os.WriteFile(keep, []byte("precious\n"), 0o600)
	run(t, "", "ga", "cp", "-s", f.Path, ":/f", keep).mustSay(t, ExitQMPError, "Input/output error")
	mustBe(t, keep, "precious\n", 0o600)
	noTemporaries(t, local)
}

// Local problems are exit 1, naming the local path, found before the
// guest file is opened: a directory as the source left the guest file
// truncated, and the failures were connection errors (exit 3).
func TestGACopyLocalErrors(t *testing.T) {
	a := gatest.StartAgent(t)
	local := t.TempDir()
	imp := filepath.Join(a.Dir, "imp")
	os.WriteFile(imp, []byte("important\n"), 0o600)
	run(t, "", "ga", "cp", "-s", a.Path, local, ":"+imp).mustSay(t, ExitQMPError, local+" is a directory")
	if got, _ := os.ReadFile(imp); string(got) != "important\n" {
		t.Errorf("the guest file holds %q", got)
	}
	none := filepath.Join(local, "none")
	run(t, "", "ga", "cp", "-s", a.Path, none, ":"+imp).mustSay(t, ExitQMPError, "cannot open "+none, "no such file")
	run(t, "", "ga", "cp", "-s", a.Path, ":"+imp, filepath.Join(none, "x")).mustSay(t, ExitQMPError, "no directory "+none)
	if n, err := a.OpenFiles(a.Dir); err != nil || n != 0 {
		t.Errorf("the agent has %d files open in the guest directory (%v); want 0", n, err)
	}
}

// Ctrl-C during a copy is exit 130, not a lost connection (3); the guest
// file is closed and the local one left as it was.
func TestGACopyInterrupted(t *testing.T) {
	reading, release := make(chan struct{}, 1), make(chan struct{})
	closed := make(chan struct{}, 1)
	f := gatest.StartFake(t, func(req gatest.Request) map[string]any {
		switch req.Execute {
		case "guest-file-open":
			return map[string]any{"return": 3}
		case "guest-file-read":
			select {
			case reading <- struct{}{}:
			default:
			}
			<-release
			// No answer: the copy ends only by the interruption. (An
			// answer here could race the signal to the copy's end.)
			return nil
		case "guest-file-close":
			closed <- struct{}{}
			return map[string]any{"return": map[string]any{}}
		}
		return map[string]any{"error": map[string]any{"class": "CommandNotFound", "desc": req.Execute}}
	})
	keep := filepath.Join(t.TempDir(), "keep")
	os.WriteFile(keep, []byte("precious\n"), 0o600)
	sigs := &fakeSignals{}
	var out, errOut qmptest.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Execute(testFactory(strings.NewReader(""), &out, &errOut, nil, sigs), []string{"ga", "cp", "-s", f.Path, ":/f", keep})
	}()
	<-reading
	if n := sigs.raise(os.Interrupt); n != 1 {
		t.Errorf("Ctrl-C reached %d subscribers, want 1", n)
	}
	close(release)
	if code := <-done; code != ExitInterrupted || !strings.Contains(errOut.String(), "interrupted while copying") {
		t.Errorf("exit %d, stderr %q; want %d", code, errOut.String(), ExitInterrupted)
	}
	select {
	case <-closed:
	default:
		t.Error("the guest file was not closed")
	}
	mustBe(t, keep, "precious\n", 0o600)
}

// A closed stdout fails the copy with EPIPE: the guest file is closed and
// the exit status is that of a broken pipe, quietly.
func TestGACopyToClosedPipe(t *testing.T) {
	a := gatest.StartAgent(t)
	guest := filepath.Join(a.Dir, "f")
	os.WriteFile(guest, []byte("some data\n"), 0o600)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	defer w.Close()
	var errOut qmptest.Buffer
	code := Main([]string{"ga", "cp", "-s", a.Path, ":" + guest, "-"}, &IOStreams{In: strings.NewReader(""), Out: w, ErrOut: &errOut})
	if code != ExitBrokenPipe || errOut.String() != "" {
		t.Errorf("exit %d, stderr %q; want %d and nothing", code, errOut.String(), ExitBrokenPipe)
	}
	if n, err := a.OpenFiles(a.Dir); err != nil || n != 0 {
		t.Errorf("the agent has %d files open in the guest directory (%v); want 0", n, err)
	}
}

// The process itself, its stdout a pipe that head closes: Go's default
// for a write to a broken stdout is to die of SIGPIPE, which left the
// guest file open in the agent.
func TestGACopyProcessSIGPIPE(t *testing.T) {
	bin := ptyBuildQmpsh(t)
	a := gatest.StartAgent(t)
	guest := filepath.Join(a.Dir, "big")
	os.WriteFile(guest, bytes.Repeat([]byte("0123456789abcdef"), 1<<19), 0o600) // 8 MiB, more than a pipe holds
	cmd := exec.Command(bin, "ga", "cp", "-s", a.Path, ":"+guest, "-")
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(stdout, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	stdout.Close() // as head -c 10 exits
	cmd.Wait()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() || ws.ExitStatus() != ExitBrokenPipe || errOut.Len() != 0 {
		t.Errorf("qmpsh ended %v, stderr %q; want exit status %d and nothing", cmd.ProcessState, errOut.String(), ExitBrokenPipe)
	}
	if n, err := a.OpenFiles(a.Dir); err != nil || n != 0 {
		t.Errorf("the agent has %d files open in the guest directory (%v); want 0", n, err)
	}
}

// Ctrl-C while ga run waits for the program is exit 130 (the program goes
// on), not a lost connection (3).
func TestGARunInterrupted(t *testing.T) {
	polled := make(chan struct{}, 1)
	f := gatest.StartFake(t, func(req gatest.Request) map[string]any {
		switch req.Execute {
		case "guest-exec":
			return map[string]any{"return": map[string]any{"pid": 7}}
		case "guest-exec-status":
			select {
			case polled <- struct{}{}:
			default:
			}
			return map[string]any{"return": map[string]any{"exited": false}}
		}
		return map[string]any{"error": map[string]any{"class": "CommandNotFound", "desc": req.Execute}}
	})
	sigs := &fakeSignals{}
	var out, errOut qmptest.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Execute(testFactory(strings.NewReader(""), &out, &errOut, nil, sigs), []string{"ga", "run", "-n", "-s", f.Path, "--", "sleep", "1000"})
	}()
	<-polled
	if n := sigs.raise(os.Interrupt); n != 1 {
		t.Errorf("Ctrl-C reached %d subscribers, want 1", n)
	}
	if code := <-done; code != ExitInterrupted || !strings.Contains(errOut.String(), "goes on running") {
		t.Errorf("exit %d, stderr %q; want %d", code, errOut.String(), ExitInterrupted)
	}
}
