package cmd

import (
	"errors"
	"strings"

	"github.com/qmpsh/qmpsh/pkg/qapi"
	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/shell"
)

// parseMatch turns --match KEY=VALUE flags into a qmp.Match. KEY is a
// dotted path into the event's data; VALUE is typed as the shell's line
// syntax types it. A value the line syntax reads as a number or a
// boolean also matches the string of the same text, since without the
// event's schema `id=123` may mean either.
func parseMatch(flags []string) (qmp.Match, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	m := qmp.Match{}
	for _, f := range flags {
		key, val, ok := strings.Cut(f, "=")
		if !ok || key == "" {
			return nil, usageErrorf("--match %q: expected KEY=VALUE", f)
		}
		if strings.HasPrefix(key, ".") || strings.HasSuffix(key, ".") || strings.Contains(key, "..") {
			return nil, usageErrorf("--match %q: empty segment in dotted key", f)
		}
		if _, dup := m[key]; dup {
			return nil, usageErrorf("--match %q: key %s is matched more than once", f, key)
		}
		v, err := lineValue(val)
		if err != nil {
			return nil, usageErrorf("--match %q: %v", f, err)
		}
		switch v.(type) {
		case string, map[string]any, []any:
			m[key] = v
		default:
			m[key] = qmp.OneOf{v, val}
		}
	}
	return m, nil
}

// lineValue types one value as the shell's line syntax does without a
// schema: integers, true/false, JSON objects and arrays, else a string.
// It is the one call into the shell's parser for it.
func lineValue(val string) (any, error) {
	in, err := shell.ParseArgs([]string{"match", "v=" + val})
	if err == nil {
		var cmd *shell.Command
		if cmd, err = in.Command(nil); err == nil {
			return cmd.Args["v"], nil
		}
	}
	var se *qapi.SyntaxError
	if errors.As(err, &se) {
		return nil, errors.New(se.Msg)
	}
	return nil, err
}
