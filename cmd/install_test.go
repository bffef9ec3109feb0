package cmd

import (
	"bytes"
	"debug/elf"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// TestMakeInstall installs into a staging tree as a packager would (make
// install DESTDIR=...), checks what is there, and that make uninstall
// takes all of it away again.
func TestMakeInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: builds qmpsh and its manual pages with make")
	}
	for _, tool := range []string{"make", "man", "groff"} {
		requireTool(t, tool)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	dest := filepath.Join(tmp, "dest")
	if err := os.Mkdir(dest, 0o755); err != nil {
		t.Fatal(err)
	}
	// The build goes to the test's directory, not the checkout.
	build := filepath.Join(tmp, "build")
	vars := []string{"DESTDIR=" + dest, "BUILDDIR=" + build, "BIN=" + filepath.Join(build, "qmpsh")}
	makeTarget(t, root, append([]string{"install"}, vars...)...)

	// Exactly the binary, a page per command and three completions, all
	// under PREFIX, the default /usr/local.
	prefix := "usr/local/"
	want := []string{"bin/qmpsh", "share/bash-completion/completions/qmpsh",
		"share/fish/vendor_completions.d/qmpsh.fish", "share/zsh/site-functions/_qmpsh"}
	for _, c := range commands(Tree()) {
		want = append(want, "share/man/man1/"+strings.ReplaceAll(c.CommandPath(), " ", "-")+".1")
	}
	for i := range want {
		want[i] = prefix + want[i]
	}
	slices.Sort(want)
	if got := files(t, dest); !slices.Equal(got, want) {
		t.Errorf("installed:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// The binary runs and says which commit it is.
	out, err := exec.Command(filepath.Join(dest, prefix, "bin/qmpsh"), "--version").Output()
	if err != nil {
		t.Fatalf("qmpsh --version: %v", err)
	}
	if !strings.HasPrefix(string(out), "qmpsh version ") {
		t.Errorf("qmpsh --version printed %q", out)
	}
	if head, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output(); err == nil {
		if want := "\ncommit " + strings.TrimSpace(string(head)) + " ("; !strings.Contains(string(out), want) {
			t.Errorf("qmpsh --version printed %q, without %q", out, want)
		}
	} else {
		t.Logf("not a git checkout (%v): the commit is not checked", err)
	}

	// Static (see the Makefile's build): no program interpreter, the
	// dynamic loader, to start first.
	// (Unless the environment asks make for cgo.)
	if v, set := os.LookupEnv("CGO_ENABLED"); !set || v == "0" {
		f, err := elf.Open(filepath.Join(dest, prefix, "bin/qmpsh"))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("make install's qmpsh is dynamically linked (it has a PT_INTERP program header); the Makefile builds it with CGO_ENABLED=0")
			}
		}
		f.Close()
	}

	// Every page renders without a warning and has the exit statuses,
	// as every --help does; qmpsh-exec.1 has the examples of exec
	// --help.
	man := filepath.Join(dest, prefix, "share/man/man1")
	pages, _ := filepath.Glob(filepath.Join(man, "*.1"))
	useLines := map[string]string{}
	for _, c := range commands(Tree()) {
		useLines[strings.ReplaceAll(c.CommandPath(), " ", "-")+".1"] = UsageLine(c)
	}
	for _, page := range pages {
		cmd := exec.Command("man", "-l", "--warnings", page)
		cmd.Env = append(os.Environ(), "MANWIDTH=80", "LC_ALL=C.UTF-8", "MANPAGER=cat", "PAGER=cat")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 || stdout.Len() == 0 {
			t.Errorf("man -l %s: %v, %d bytes, warnings:\n%s", filepath.Base(page), err, stdout.Len(), stderr.String())
		}
		for _, section := range []string{"EXIT STATUS", "EXAMPLE"} {
			if !strings.Contains(stdout.String(), "\n"+section+"\n") {
				t.Errorf("man %s has no %s section", filepath.Base(page), section)
			}
		}
		// The synopsis is --help's usage line, word for word: the
		// converter takes the page's text as Markdown, where "[a] (b)"
		// would be a link. Wide, so that no word is hyphenated.
		wide := exec.Command("man", "-l", page)
		wide.Env = append(os.Environ(), "MANWIDTH=1000", "LC_ALL=C.UTF-8", "MANPAGER=cat", "PAGER=cat")
		text, err := wide.Output()
		if got, want := synopsis(string(text)), useLines[filepath.Base(page)]; err != nil || got != want {
			t.Errorf("man %s: %v; SYNOPSIS reads %q, --help %q", filepath.Base(page), err, got, want)
		}
		if filepath.Base(page) == "qmpsh-exec.1" {
			text := stdout.String()
			// A status's meaning on two lines of --help keeps both.
			for _, want := range []string{"EXIT STATUS", "4      timed out", "or ga cp or ga run", "EXAMPLE", "qmpsh exec -s /tmp/qmp.sock query-status"} {
				if !strings.Contains(text, want) {
					t.Errorf("man qmpsh-exec lacks %q:\n%s", want, text)
				}
			}
		}
	}

	// Completions that load in their shell's way.
	for path, want := range map[string]string{
		"share/bash-completion/completions/qmpsh":    "complete -o default -F __start_qmpsh qmpsh",
		"share/zsh/site-functions/_qmpsh":            "#compdef qmpsh",
		"share/fish/vendor_completions.d/qmpsh.fish": "complete -c qmpsh",
	} {
		b, err := os.ReadFile(filepath.Join(dest, prefix, path))
		if err != nil || !bytes.Contains(b, []byte(want)) {
			t.Errorf("%s: %v; does not contain %q", path, err, want)
		}
	}

	makeTarget(t, root, append([]string{"uninstall"}, vars...)...)
	if left, err := os.ReadDir(dest); err != nil || len(left) > 0 {
		t.Errorf("after make uninstall: %v, left %v", err, files(t, dest))
	}
}

// synopsis is the SYNOPSIS section of a page man rendered, its lines
// joined with single spaces.
func synopsis(page string) string {
	_, rest, _ := strings.Cut(page, "\nSYNOPSIS\n")
	section, _, _ := strings.Cut(rest, "\n\n")
	// man renders "-" as a hyphen in some locales.
	section = strings.NewReplacer("\u2010", "-", "\u2212", "-").Replace(section)
	return strings.Join(strings.Fields(section), " ")
}

// commands is the tree's commands that have a manual page: those --help
// lists.
func commands(c *cobra.Command) []*cobra.Command {
	var all []*cobra.Command
	if c.IsAvailableCommand() && !c.IsAdditionalHelpTopicCommand() {
		all = append(all, c)
	}
	for _, sub := range c.Commands() {
		all = append(all, commands(sub)...)
	}
	return all
}

// files is every file under dir, as sorted paths relative to it.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var all []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			all = append(all, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(all)
	return all
}

// makeTarget runs make in dir, with no PREFIX or DESTDIR from our
// environment, nor variables from a make that runs us (make test
// PREFIX=..., which MAKEFLAGS would pass on).
func makeTarget(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("make", append([]string{"-C", dir}, args...)...)
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !slices.Contains([]string{"PREFIX", "DESTDIR", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"}, k) {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// requireTool skips the test when tool is missing, or fails it where
// skipping is forbidden (QMPSH_REQUIRE_QEMU, which CI sets; make test
// installs the tools).
func requireTool(t *testing.T, tool string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err == nil {
		return
	}
	if required, _ := strconv.ParseBool(os.Getenv(qmptest.RequireQEMUEnv)); required {
		t.Fatalf("%s is not on PATH and %s forbids skipping; make man-tools installs it", tool, qmptest.RequireQEMUEnv)
	}
	t.Skipf("skipping: %s is not on PATH; make man-tools installs it", tool)
}
