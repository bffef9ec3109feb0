package cmd

import (
	"bytes"
	"encoding/json"
	"io"
	"slices"
	"strings"

	"github.com/qmpsh/qmpsh/pkg/shell"
)

// qemuSecrets returns the secrets QEMU's command line argv carries in
// clear: a secret object's data, and the value of an option's key that
// names a password by passwordKey's rule (-spice password=X, -set
// spice.0.password=X), but for QEMU's booleans (-vnc :0,password=on).
// QEMU repeats an option it rejects, often because of a typo, and its
// output goes to a log file on disk; so an -object that mentions data,
// a secret or a password, however mistyped (Data=, secrte,, JSON that
// is not quite JSON, -object= with its value), is a secret whole, as
// QEMU quotes it, and so is each data= value of any -object. Values are
// given as written and, when QEMU's option syntax changes them (a
// doubled comma is one), as QEMU reads them. Credentials inside a disk's
// location, in any argument (-drive file=https://USER:PASSWORD@..., -cdrom
// iscsi://USER%PASSWORD@..., rbd:...:key=KEY), are secrets too.
func qemuSecrets(argv []string) []string {
	var found []string
	add := func(ss ...string) {
		for _, s := range ss {
			if s != "" && !slices.Contains(found, s) {
				found = append(found, s)
			}
		}
	}
	for i, arg := range argv {
		object := i > 0 && (argv[i-1] == "-object" || argv[i-1] == "--object")
		for _, o := range []string{"-object=", "--object="} {
			if v, ok := strings.CutPrefix(arg, o); ok {
				object, arg = true, v
			}
		}
		if object {
			lower := strings.ToLower(arg)
			if strings.Contains(lower, "data") || strings.Contains(lower, "secret") || strings.Contains(lower, "pass") {
				add(arg)
			}
			if strings.HasPrefix(strings.TrimSpace(arg), "{") {
				var m map[string]any
				json.Unmarshal([]byte(arg), &m) // QEMU's JSON allows 'quotes': then arg alone
				for k, v := range m {
					if s, ok := v.(string); ok && (k == "data" || passwordKey(k) && !qemuBool(s)) {
						add(s)
					}
				}
				continue
			}
		}
		for _, p := range qemuOptParts(arg) {
			if object && p.key == "data" || passwordKey(lastKey(p.key)) && !qemuBool(p.value) {
				add(p.rawValue, p.value)
			}
		}
		add(shell.LocationSecrets(arg)...)
	}
	return found
}

// lastKey is the last part of a dotted key (spice.0.password: password),
// as -set names an option's key.
func lastKey(k string) string { return k[strings.LastIndexByte(k, '.')+1:] }

// qemuBool reports whether s is one of QEMU's boolean words, which a
// password= key may take (-vnc :0,password=on): not a secret.
func qemuBool(s string) bool {
	switch s {
	case "on", "off", "yes", "no", "y", "n", "true", "false":
		return true
	}
	return false
}

// qemuOptPart is one key=value of a QEMU option, as written (raw,
// rawValue) and as QEMU reads it (key, value: a doubled comma is one).
type qemuOptPart struct {
	raw, key, rawValue, value string
}

// qemuOptParts splits an option's value at its single commas.
func qemuOptParts(arg string) []qemuOptPart {
	var parts []qemuOptPart
	start := 0
	for i := 0; i <= len(arg); i++ {
		if i < len(arg) && arg[i] != ',' {
			continue
		}
		if i+1 < len(arg) && arg[i+1] == ',' { // ",," is a comma
			i++
			continue
		}
		raw := arg[start:i]
		p := qemuOptPart{raw: raw}
		if k, v, ok := strings.Cut(raw, "="); ok {
			p.key, p.rawValue, p.value = k, v, strings.ReplaceAll(v, ",,", ",")
		}
		parts = append(parts, p)
		start = i + 1
	}
	return parts
}

// redactingWriter writes QEMU's output to w with each of secrets (longest
// first) replaced by <redacted>. It holds back what follows the last newline, enough of
// it for a secret split between two writes to be whole when replaced;
// flush writes the rest. It never fails a write: QEMU's output must keep
// flowing whatever becomes of the log.
type redactingWriter struct {
	w       io.Writer
	secrets [][]byte
	longest int
	held    []byte
}

func newRedactingWriter(w io.Writer, secrets []string) *redactingWriter {
	r := &redactingWriter{w: w}
	// Longest first: a secret that contains another must go whole.
	secrets = slices.Clone(secrets)
	slices.SortStableFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, s := range secrets {
		r.secrets = append(r.secrets, []byte(s))
		r.longest = max(r.longest, len(s))
	}
	return r
}

// holdAtMost is how much of a line without its newline is held back.
const holdAtMost = 64 << 10

func (r *redactingWriter) Write(p []byte) (int, error) {
	r.held = append(r.held, p...)
	n := bytes.LastIndexByte(r.held, '\n') + 1
	switch {
	case n > 0:
		r.w.Write(r.redact(r.held[:n]))
	case len(r.held) > holdAtMost+r.longest:
		// A long line: replace what is whole, then write all but what
		// could be the start of a secret.
		r.held = r.redact(r.held)
		n = len(r.held) - r.longest
		r.w.Write(r.held[:n])
	}
	r.held = append(r.held[:0], r.held[n:]...)
	return len(p), nil
}

func (r *redactingWriter) flush() {
	if len(r.held) > 0 {
		r.w.Write(r.redact(r.held))
		r.held = r.held[:0]
	}
}

func (r *redactingWriter) redact(b []byte) []byte {
	for _, s := range r.secrets {
		if bytes.Contains(b, s) {
			b = bytes.ReplaceAll(b, s, []byte("<redacted>"))
		}
	}
	return b
}
