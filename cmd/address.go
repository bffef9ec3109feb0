package cmd

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/qmpsh/qmpsh/pkg/protocol"
)

// addressForms is what an address may be, for a message about one that
// is not.
const addressForms = "give a UNIX socket path, HOST:PORT, unix:PATH, tcp:HOST:PORT or tls:HOST:PORT"

// checkAddress refuses an address that names nothing to connect to or
// listen on (empty, "unix:", "tcp:" without a port, ...): a usage error,
// before anything is sent, rather than a connection failure. where names
// where it was given, and is followed by the address in quotes: "-s ",
// "--listen ", "connect ", "QMP_SOCKET=".
func checkAddress(where, addr string) error {
	if _, err := protocol.ParseAddress(addr); err == nil {
		return nil
	}
	var reason string
	switch {
	case addr == "":
		reason = "empty address"
	case addr == "unix:":
		reason = `empty socket path after "unix:"`
	case strings.HasPrefix(addr, "tcp:"):
		reason = "expected tcp:HOST:PORT with a port number from 0 to 65535"
	case strings.HasPrefix(addr, "tls:"):
		reason = "expected tls:HOST:PORT with a port number from 0 to 65535"
	case !strings.Contains(addr, "/") && strings.Contains(addr, ":"):
		reason = "the port is not a number from 0 to 65535 (unix:PATH for a socket file of that name)"
	default:
		reason = "not an address"
	}
	return &ExitError{Code: ExitUsage, Syntax: true,
		Err: fmt.Errorf("%s%s: %s: %s", where, shellQuote(addr), reason, addressForms)}
}

// oneSocketFlag defines -s for a command that talks to one QMP server: a
// second -s naming another server is a usage error, not quietly taken
// over the first (exec and events, which take many, define theirs as an
// array). The same server however spelled (X, unix:X) is one, as for
// exec's targets.
func oneSocketFlag(f *pflag.FlagSet, p *string, help string) {
	f.VarP(&onceValue{p: p, same: func(a, b string) bool { return targetKey(a) == targetKey(b) }}, "socket", "s", help)
}

// onceValue is a string flag's value that may be set once, or again to
// the same value (same says which are): cobra parses a command's flags
// twice when completing. After a refused value, the command line is
// wrong: completion offers nothing more for it.
type onceValue struct {
	p    *string
	same func(a, b string) bool // nil: equal strings
	set  bool
}

func (o *onceValue) Set(v string) error {
	if o.set {
		if v == *o.p || o.same != nil && o.same(v, *o.p) {
			return nil // the first spelling stays
		}
		return &repeatedFlagError{first: *o.p}
	}
	*o.p, o.set = v, true
	return nil
}

func (o *onceValue) String() string { return *o.p }
func (o *onceValue) Type() string   { return "string" }

// repeatedFlagError is a onceValue's refusal of a second value.
type repeatedFlagError struct{ first string }

func (e *repeatedFlagError) Error() string { return "given twice, first as " + e.first }

// flagName is how a message names fl: by its shorthand if it has one.
func flagName(fl *pflag.Flag) string {
	if fl.Shorthand != "" {
		return "-" + fl.Shorthand
	}
	return "--" + fl.Name
}

// checkAddressFlags checks, with checkAddress, every address c was given:
// -s and --listen (each value of a repeatable one), and the ADDR argument
// of connect and accept (ga connect's too). A flag given empty (-s ”) is
// refused, not taken as absent.
func checkAddressFlags(c *cobra.Command, args []string) error {
	for _, name := range []string{"socket", "listen"} {
		fl := c.Flags().Lookup(name)
		if fl == nil || !fl.Changed {
			continue
		}
		where := flagName(fl) + " "
		for _, v := range flagValues(fl) {
			if err := checkAddress(where, v); err != nil {
				return err
			}
		}
	}
	switch c.Name() {
	case "connect", "accept":
		cmd := strings.TrimPrefix(c.CommandPath(), c.Root().Name()+" ")
		for _, a := range args {
			if err := checkAddress(cmd+" ", a); err != nil {
				return err
			}
		}
	}
	return nil
}

// flagValues returns what fl was given: each value of a repeatable flag,
// or its one value. (A repeatable flag's String is its values encoded as
// CSV, work for nothing here.)
func flagValues(fl *pflag.Flag) []string {
	if sv, ok := fl.Value.(pflag.SliceValue); ok {
		return sv.GetSlice()
	}
	return []string{fl.Value.String()}
}

// shellQuote quotes s in single quotes for a message, as a POSIX shell
// would need it typed (” for an empty string).
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
