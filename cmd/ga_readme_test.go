package cmd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/ga/gatest"
)

// TestREADMEGuestAgentExamples runs the README's first block of ga
// examples with sh, against qemu-ga on this host: the socket and the
// files are swapped for the test's own (the guest's side in the agent's
// temporary directory), stdout piped.
func TestREADMEGuestAgentExamples(t *testing.T) {
	a := gatest.StartAgent(t)
	bin := ptyBuildQmpsh(t)
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Guest agent\n")
	if !ok {
		t.Fatal("README has no Guest agent section")
	}
	// The second sh block is the examples; the first is QEMU's command line.
	blocks := strings.Split(section, "```sh\n")
	if len(blocks) < 3 {
		t.Fatal("the Guest agent section has no examples block")
	}
	block, _, _ := strings.Cut(blocks[2], "```")
	local := t.TempDir()
	if err := os.WriteFile(filepath.Join(local, "app.conf"), []byte("key = value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	swap := strings.NewReplacer(
		"/tmp/qga.sock", a.Path,
		":/etc/app.conf", ":"+filepath.Join(a.Dir, "app.conf"),
		":/var/log/syslog", ":"+filepath.Join(a.Dir, "app.conf"),
		"qmpsh ", bin+" ",
	)
	want := map[string]string{ // a word of each example's output
		"uname -a": "Linux", "tr a-z A-Z": "HELLO", "guest-get-osinfo": `"kernel-release"`,
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		n++
		cmd := exec.Command("/bin/sh", "-c", swap.Replace(line))
		cmd.Dir = local
		cmd.Stdin = strings.NewReader("") // ga connect reads its lines from a pipe
		out, err := cmd.Output()
		if err != nil {
			t.Errorf("%s: %v (stdout %q)", line, err, out)
			continue
		}
		for k, w := range want {
			if strings.Contains(line, k) && !strings.Contains(string(out), w) {
				t.Errorf("%s: stdout %q lacks %q", line, out, w)
			}
		}
	}
	if got, err := os.ReadFile(filepath.Join(local, "syslog")); err != nil || string(got) != "key = value\n" {
		t.Errorf("copied in and out again: %q, %v", got, err)
	}
	if n != 6 {
		t.Errorf("ran %d examples; the README has changed: update this test", n)
	}
}
