package cmd

import (
	"bytes"
	"encoding/json"
	"io"
	"slices"
	"strings"
)

// qemuSecrets returns the secrets QEMU's command line argv carries in
// clear, by the rules of the traffic's redaction: a secret object's data
// (-object secret,id=s0,data=X, or the JSON form of -object), and the
// value of an option's key that names a password by passwordKey's rule
// (-spice password=X), but for on and off
// and the like. QEMU repeats them in its output when it rejects the option
// that carries one, and its output goes to a log file on disk. Each is
// given as written and, when QEMU's option syntax changes it (a doubled
// comma is one), as QEMU reads it; of the JSON form, which QEMU quotes
// whole, escapes and all, the whole option is one.
func qemuSecrets(argv []string) []string {
	var found []string
	add := func(ss ...string) {
		for _, s := range ss {
			if s != "" && !qemuBool(s) && !slices.Contains(found, s) {
				found = append(found, s)
			}
		}
	}
	for i, arg := range argv {
		object := i > 0 && (argv[i-1] == "-object" || argv[i-1] == "--object")
		if object && strings.HasPrefix(strings.TrimSpace(arg), "{") {
			var m map[string]any
			if json.Unmarshal([]byte(arg), &m) == nil {
				for k, v := range m {
					if s, ok := v.(string); ok && (k == "data" && m["qom-type"] == "secret" || passwordKey(k)) {
						add(arg, s)
					}
				}
			}
			continue
		}
		parts := qemuOptParts(arg)
		secret := false
		for j, p := range parts {
			if object && (j == 0 && p.raw == "secret" || p.key == "qom-type" && p.value == "secret") {
				secret = true
			}
		}
		for _, p := range parts {
			if p.key == "data" && secret || passwordKey(p.key) {
				add(p.rawValue, p.value)
			}
		}
	}
	return found
}

// qemuBool reports whether s is one of QEMU's boolean words, which a
// password= key may take (-vnc :0,password=on): not a secret.
func qemuBool(s string) bool {
	switch s {
	case "on", "off", "yes", "no", "true", "false":
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

// redactingWriter writes QEMU's output to w with each of secrets replaced
// by <redacted>. It holds back what follows the last newline, enough of
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
	if n == 0 && len(r.held) > holdAtMost+r.longest {
		// A long line: replace what is whole, then write all but what
		// could be the start of a secret.
		r.held = r.redact(r.held)
		n = len(r.held) - r.longest
	}
	if n > 0 {
		r.w.Write(r.redact(r.held[:n]))
		r.held = append(r.held[:0], r.held[n:]...)
	}
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
