package shell

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/qmpsh/qmpsh/pkg/protocol"
	"github.com/qmpsh/qmpsh/pkg/qapi"
)

// hmpInfo holds the subcommands of HMP's "info", learnt once per
// connection from "help info", as qmp-shell's HMP mode does.
type hmpInfo struct {
	fetched bool
	names   []string
}

// completeHMP completes the word after "hmp info" (after "info" alone in
// HMP mode) to info's subcommands; ok is false for any other line, which
// is completed as before.
func (c *Completer) completeHMP(line string) (cands []string, n int, ok bool) {
	words, partial, complete := completionWords(line)
	if !complete || c.Client == nil { // a guest agent has no HMP
		return nil, 0, false
	}
	if len(words) > 0 && words[0] == "hmp" {
		words = words[1:]
	} else if !c.HMP {
		return nil, 0, false
	}
	switch {
	case len(words) == 0 || words[0] != "info":
		return nil, 0, false
	case len(words) > 1:
		return nil, 0, true // info takes one subcommand; its arguments vary
	}
	return qapi.WithPrefix(partial, c.infoNames()), utf8.RuneCountInString(partial), true
}

// infoNames returns info's subcommands, asking the server on the first
// call. A connection lost meanwhile leaves nothing learnt: ask again.
func (c *Completer) infoNames() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.info.fetched {
		return c.info.names
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ret, err := c.Client.Execute(ctx, "human-monitor-command", map[string]any{"command-line": "help info"})
	var text string
	if err == nil && json.Unmarshal(ret, &text) == nil {
		c.info.names = parseHelpInfo(text)
	}
	c.info.fetched = err == nil || c.Client.Runstate() == protocol.Running
	return c.info.names
}

// parseHelpInfo takes the first word after "info " on each line of HMP's
// "help info", e.g. "info block [-n] [-v] [device] -- show info of ...",
// sorted, without repeats.
func parseHelpInfo(text string) []string {
	var names []string
	for _, l := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(l), "info ")
		if !ok {
			continue
		}
		if f := strings.Fields(rest); len(f) > 0 && f[0] != "--" {
			names = append(names, f[0])
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}
