// Qmpsh-man writes qmpsh's manual pages, one per command (qmpsh.1,
// qmpsh-exec.1, ...), generated from the cobra command tree by cobra's
// doc package, so that they say what --help says. `make install` runs it:
//
//	go run ./cmd/qmpsh-man [-version VERSION] DIR
//
// It is a program of its own rather than a hidden qmpsh subcommand so
// that the qmpsh binary does not carry the Markdown-to-roff converter
// (cobra/doc, go-md2man, blackfriday), which would make it larger and
// slower to start for every `qmpsh exec`.
//
// Each command's description is its Long text, which is Markdown to the
// converter; the exit-status table that ends it in --help becomes an EXIT
// STATUS section, and its Example an EXAMPLE section. SOURCE_DATE_EPOCH,
// when set, dates the pages (the Makefile sets it to the commit's time,
// so the pages of one commit are the same wherever they are built).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/qmpsh/qmpsh/cmd"
)

func main() {
	version := flag.String("version", "", "the version the pages name in their footer")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: qmpsh-man [-version VERSION] DIR")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := write(flag.Arg(0), *version); err != nil {
		fmt.Fprintln(os.Stderr, "qmpsh-man:", err)
		os.Exit(1)
	}
}

// write writes the pages into dir, creating it.
func write(dir, version string) error {
	root := cmd.Tree()
	if err := manual(root); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	source := strings.TrimSpace("qmpsh " + version)
	return doc.GenManTree(root, &doc.GenManHeader{Section: "1", Source: source, Manual: "qmpsh manual"}, dir)
}

// exitStatusText matches the exit-status table of --help: a heading line,
// then one "  N  meaning" line per status, which may go on over lines
// indented further. --help shows it at the end of the usage text, and
// commands' Long texts end with it too.
var (
	exitStatusText = regexp.MustCompile(`(?m)^Exit status:\n((?:  (?:\d+  | {3}).*(?:\n|\z))+)`)
	exitStatusLine = regexp.MustCompile(`(?m)^  (\d+)  (.*(?:\n {5,}\S.*)*)$`)
)

// manual prepares the tree's texts for the manual: every command gets
// the exit-status table of --help, which every --help ends with, as a
// section of its own, which replaces the plain-text table at the end of
// a qmpsh command's Long text; cobra's completion commands keep their
// own texts otherwise. No page gets cobra's "Auto generated" history
// section.
func manual(root *cobra.Command) error {
	var table string
	if m := exitStatusText.FindStringSubmatch(root.UsageString()); m != nil {
		table = m[1]
	}
	var all []*cobra.Command
	var visit func(c *cobra.Command, ours bool)
	visit = func(c *cobra.Command, ours bool) {
		c.DisableAutoGenTag = true
		synopsis(c)
		all = append(all, c)
		if ours = ours && !(c.Name() == "completion" && c.Parent() == root); ours {
			if m := exitStatusText.FindStringSubmatchIndex(c.Long); m != nil && strings.TrimSpace(c.Long[m[1]:]) == "" {
				if table == "" {
					table = c.Long[m[2]:m[3]]
				}
				c.Long = strings.TrimRight(c.Long[:m[0]], "\n")
			}
		}
		for _, sub := range c.Commands() {
			visit(sub, ours)
		}
	}
	visit(root, true)
	if table == "" {
		return errors.New("found no exit-status table in --help (Exit status: then lines of \"  N  meaning\")")
	}
	// A definition list, which the converter renders as man's usual
	// tagged paragraphs (.TP).
	var section strings.Builder
	section.WriteString("\n\n# EXIT STATUS\n")
	for _, m := range exitStatusLine.FindAllStringSubmatch(table, -1) {
		meaning := strings.Join(strings.Fields(m[2]), " ")
		fmt.Fprintf(&section, "%s\n: %s\n\n", m[1], meaning)
	}
	for _, c := range all {
		c.Long = c.Long + strings.TrimRight(section.String(), "\n")
	}
	return nil
}

// synopsis makes c's page's SYNOPSIS, which cobra's converter writes from
// c.UseLine(), the usage line of --help (cmd.UsageLine), and keeps it so:
// the converter reads the line as Markdown, where exec's "[--wait-event
// NAME] (COMMAND ...)" would be a link and its brackets would go, so the
// characters Markdown gives a meaning are escaped.
func synopsis(c *cobra.Command) {
	line := cmd.UsageLine(c)
	if line == "" { // a help topic: no synopsis
		return
	}
	c.Use = c.Name() + markdownEscaper.Replace(strings.TrimPrefix(line, c.CommandPath()))
	c.DisableFlagsInUseLine = true // the line has its [flags] already
}

var markdownEscaper = strings.NewReplacer(
	`\`, `\\`, "`", "\\`", `*`, `\*`, `_`, `\_`, `[`, `\[`, `]`, `\]`,
	`(`, `\(`, `)`, `\)`, `<`, `\<`, `>`, `\>`, `#`, `\#`, `|`, `\|`, `~`, `\~`, `!`, `\!`,
)
