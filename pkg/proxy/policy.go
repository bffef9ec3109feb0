package proxy

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Policy decides which commands clients may send to QEMU. The zero
// value lets everything through.
type Policy struct {
	// Allow, when not empty, lets only commands matching one of these
	// globs (path.Match syntax) through.
	Allow []string
	// Deny refuses commands matching one of these globs, whatever Allow
	// says.
	Deny []string
	// ReadOnly lets only ReadOnlyCommands through.
	ReadOnly bool
}

// ReadOnlyCommands are the commands --read-only lets through: those that
// only read. A glob ends with '*'. human-monitor-command is not among
// them: through HMP it can do anything.
var ReadOnlyCommands = []string{
	"query-*", "qom-get", "qom-list", "qom-list-types", "qom-list-properties",
	"device-list-properties", "qmp_capabilities",
}

// Check validates the globs.
func (p *Policy) Check() error {
	for _, set := range [][]string{p.Allow, p.Deny} {
		for _, g := range set {
			if _, err := path.Match(g, ""); err != nil {
				return fmt.Errorf("bad command glob %q: %w", g, err)
			}
		}
	}
	return nil
}

// Refusal says why command may not pass, or "" when it may.
func (p *Policy) Refusal(command string) string {
	for _, g := range p.Deny {
		if ok, _ := path.Match(g, command); ok {
			return fmt.Sprintf("command '%s' is refused by the proxy: it matches --deny '%s'", command, g)
		}
	}
	if p.ReadOnly && !readOnly(command) {
		return fmt.Sprintf("command '%s' is refused by the proxy: --read-only lets only commands that read through", command)
	}
	if len(p.Allow) > 0 && !slices.ContainsFunc(p.Allow, func(g string) bool {
		ok, _ := path.Match(g, command)
		return ok
	}) {
		return fmt.Sprintf("command '%s' is refused by the proxy: it matches no --allow", command)
	}
	return ""
}

func readOnly(command string) bool {
	for _, c := range ReadOnlyCommands {
		if prefix, ok := strings.CutSuffix(c, "*"); ok {
			if strings.HasPrefix(command, prefix) {
				return true
			}
		} else if c == command {
			return true
		}
	}
	return false
}
