//go:build linux

package cmd

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// TestPtySession covers what a person at a terminal sees and gets back:
// the exit status of a session, messages on lines of their own, the
// pager and completion.
func TestPtySession(t *testing.T) {
	bin := ptyBuildQmpsh(t)

	// A typo is a person's to read and fix: it does not make the whole
	// session a failure, as it does a script's.
	t.Run("FailedCommandExitsZero", func(t *testing.T) {
		sock := qmptest.StartQEMU(t)
		s := ptyStart(t, bin, "connect", "--color", "never", sock)
		s.expectPrompt(``, "(QEMU) ", "")
		s.send("query-statsu\r")
		s.expectPrompt(`CommandNotFound[^\r\n]*\r\n`+ptyControls, "(QEMU) ", "")
		s.send("\x04")
		s.expectExit(0)
	})

	// Help longer than the terminal goes through $PAGER, as git's
	// output does; help that fits is printed as it is.
	t.Run("LongHelpPaged", func(t *testing.T) {
		record := writePagerScript(t)
		sock := qmptest.StartQEMU(t)
		s := ptyStart(t, bin, "connect", "--color", "never", sock)
		s.expectPrompt(``, "(QEMU) ", "")
		s.send("help stop\r")
		s.expectPrompt(`stop \(command\)[^\x1b]*`+ptyControls, "(QEMU) ", "")
		if _, err := os.Stat(record); err == nil {
			t.Errorf("help stop (a few lines) ran the pager")
		}
		s.send("help blockdev-add\r")
		s.expect(`blockdev-add \(command\)`)
		s.expectPrompt(``, "(QEMU) ", "")
		if data, err := os.ReadFile(record); err != nil || string(data) != "paged\n" {
			t.Errorf("help blockdev-add: pager record %q, %v; want it run once", data, err)
		}
		s.send("\x04")
		s.expectExit(0)
	})

	// qmpsh schema on a terminal pages as the shell's help does: a
	// long help or the list of names, not one that fits.
	t.Run("SchemaPaged", func(t *testing.T) {
		record := writePagerScript(t)
		sock := qmptest.StartQEMU(t)
		for _, c := range []struct {
			args  []string
			shows string
			paged bool
		}{
			{[]string{"stop"}, `stop \(command\)`, false},
			{[]string{"blockdev-add"}, `blockdev-add \(command\)`, true},
			{nil, `query-status`, true},
		} {
			os.Remove(record)
			s := ptyStart(t, bin, append([]string{"schema", "-s", sock}, c.args...)...)
			s.expect(c.shows)
			s.expectExit(0)
			if _, err := os.Stat(record); (err == nil) != c.paged {
				t.Errorf("schema %q: paged %v, want %v", c.args, err == nil, c.paged)
			}
		}
	})

	// Ctrl-C while the shell waits for a reply: the terminal echoes ^C,
	// and the notice goes on the next line.
	t.Run("CtrlCWhileWaitingOnOwnLine", func(t *testing.T) {
		waiting := make(chan struct{})
		srv := qmptest.NewServer(func(c *qmptest.Conn) {
			c.Greet()
			for {
				req, err := c.ReadRequest()
				if err != nil {
					return
				}
				switch req.Execute {
				case "sleep": // never answered
					close(waiting)
				case "query-qmp-schema", "query-commands":
					c.ReplyError(req.ID, "CommandNotFound", "The command "+req.Execute+" has not been found")
				default:
					c.Reply(req.ID, map[string]any{})
				}
			}
		})
		defer srv.Close()
		s := ptyStart(t, bin, "connect", "--color", "never", srv.Addr)
		s.expectPrompt(``, "(QEMU) ", "")
		s.send("sleep\r")
		<-waiting
		s.send("\x03")
		if v := s.ptyVisibleBefore(`interrupted: stopped waiting for the reply`); v != "" {
			t.Errorf("the notice follows %q on its line", v)
		}
		s.expectPrompt(``, "(QEMU) ", "")
		s.send("\x04")
		s.expectExit(0)
	})
}

// writePagerScript sets $PAGER to a script that records each run in the
// file it returns, and shows its input.
func writePagerScript(t *testing.T) (record string) {
	t.Helper()
	dir := t.TempDir()
	record = filepath.Join(dir, "record")
	script := filepath.Join(dir, "pager")
	err := os.WriteFile(script, []byte("#!/bin/sh\necho paged >>'"+record+"'\nexec cat\n"), 0o755)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PAGER", script)
	return record
}

// ptyVisibleBefore is what the terminal shows on the cursor's line just
// before the first match of re in the output not yet matched: the text
// after the last line feed, control sequences dropped, after the last
// carriage return.
func (s *ptySession) ptyVisibleBefore(re string) string {
	s.t.Helper()
	s.expect(re)
	s.mu.Lock()
	defer s.mu.Unlock()
	loc := regexp.MustCompile(re).FindIndex(s.out[:s.pos])
	for last := loc; last != nil; {
		loc = last
		next := regexp.MustCompile(re).FindIndex(s.out[loc[1]:s.pos])
		if next == nil {
			break
		}
		last = []int{loc[1] + next[0], loc[1] + next[1]}
	}
	before := string(s.out[:loc[0]])
	if i := strings.LastIndexByte(before, '\n'); i >= 0 {
		before = before[i+1:]
	}
	before = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`).ReplaceAllString(before, "")
	if i := strings.LastIndexByte(before, '\r'); i >= 0 {
		before = before[i+1:]
	}
	return before
}

// TestWrapPtyMessagesOnOwnLine: what qmpsh says when QEMU dies under
// the prompt starts a line of its own.
func TestWrapPtyMessagesOnOwnLine(t *testing.T) {
	bin := ptyBuildQmpsh(t)
	t.Setenv("TMPDIR", t.TempDir()) // for QEMU's log
	s := ptyStart(t, bin, append([]string{"wrap", "--color", "never", "--"}, wrapQEMU...)...)
	s.expect(`qmpsh: started QEMU \(pid \d+\)`)
	m := regexp.MustCompile(`started QEMU \(pid (\d+)\)`).FindStringSubmatch(s.screen())
	pid, _ := strconv.Atoi(m[1])
	s.expectPrompt(``, "(QEMU) ", "")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if v := s.ptyVisibleBefore(`qmpsh: QEMU was killed by signal 9`); v != "" {
		t.Errorf("the message follows %q on its line", v)
	}
	s.expectExit(128 + 9)
}
