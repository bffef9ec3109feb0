package cmd

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/qmpsh/qmpsh/pkg/shell"
)

// redactedValue replaces a secret in the traffic that -v shows and --log
// writes.
const redactedValue = "<redacted>"

// maxPendingSecrets bounds the requests whose replies a redactor waits
// for: a proxy's client that leaves with such a request in flight never
// gets its reply, and must not make the set grow for ever.
const maxPendingSecrets = 1024

// redactor hides secrets in traffic lines, so that they never reach the
// --log file (or a -v display redirected to one) in clear. What it hides:
//
//   - in a request, the value of any member named password or passwd or
//     ending in -password or -passwd (set_password, change-vnc-password,
//     guest-set-user-password), however deep; the data of a secret object
//     (object-add, or its props); the value a qom-set gives a property
//     named data or password; and, after its first word, an HMP command
//     line that CarriesSecret (set_password, object_add secret,...);
//   - in a reply, the return value of a qom-get of such a property (QEMU
//     gives a secret's data back) and of such an HMP command.
//
// Names of secret objects (key-secret=sec0) are not secrets and stay. A
// message that is not JSON but whose words carry a secret is hidden
// whole. The caller serialises calls.
type redactor struct {
	// pending holds "WHO\x00ID" (ID as JSON, "" for none) for each
	// request whose reply must be hidden; WHO tells a proxy's peers apart.
	pending map[string]bool
}

// message returns msg, from or to who, with its secrets hidden: msg itself
// when it has none.
func (r *redactor) message(who string, msg []byte) []byte {
	if len(r.pending) > 0 {
		if out, ok := r.reply(who, msg); ok {
			return out
		}
	}
	if !mayCarrySecret(msg) {
		return msg
	}
	var v map[string]any
	d := json.NewDecoder(bytes.NewReader(msg))
	d.UseNumber() // numbers as they were written
	if d.Decode(&v) != nil || v == nil {
		if shell.CarriesSecret(string(msg)) {
			return []byte(`"` + redactedValue + ` (not JSON)"`)
		}
		return msg
	}
	_, request := v["execute"]
	if _, oob := v["exec-oob"]; oob {
		request = true
	}
	if !request {
		return msg
	}
	args, _ := v["arguments"].(map[string]any)
	hid := redactValue(args)
	command, _ := v["execute"].(string)
	if command == "" {
		command, _ = v["exec-oob"].(string)
	}
	switch command {
	case "qom-get":
		if p, _ := args["property"].(string); secretProperty(p) {
			r.expect(who, v["id"])
		}
	case "qom-set":
		if p, _ := args["property"].(string); secretProperty(p) {
			if _, ok := args["value"]; ok {
				args["value"] = redactedValue
				hid = true
			}
		}
	case "human-monitor-command":
		if hid {
			r.expect(who, v["id"])
		}
	}
	if !hid {
		return msg
	}
	return marshalTraffic(v)
}

// reply hides the return value of a reply r waits for, and reports
// whether msg was one.
func (r *redactor) reply(who string, msg []byte) ([]byte, bool) {
	var v map[string]any
	d := json.NewDecoder(bytes.NewReader(msg))
	d.UseNumber()
	if d.Decode(&v) != nil {
		return nil, false
	}
	_, ret := v["return"]
	_, fail := v["error"]
	key := pendingKey(who, v["id"])
	if !(ret || fail) || !r.pending[key] {
		return nil, false
	}
	delete(r.pending, key)
	if !ret {
		return msg, true
	}
	v["return"] = redactedValue
	return marshalTraffic(v), true
}

// expect notes that the reply to who's request id is to be hidden.
func (r *redactor) expect(who string, id any) {
	if r.pending == nil {
		r.pending = map[string]bool{}
	}
	if len(r.pending) >= maxPendingSecrets {
		for k := range r.pending { // forget one, most likely abandoned
			delete(r.pending, k)
			break
		}
	}
	r.pending[pendingKey(who, id)] = true
}

func pendingKey(who string, id any) string {
	if id == nil {
		return who + "\x00"
	}
	b, _ := json.Marshal(id)
	return who + "\x00" + string(b)
}

// mayCarrySecret is a cheap first look, so that most messages (events,
// a copy's file data, the schema) are not decoded: a secret needs a
// request (the replies that give one back are caught by their ids, see
// reply) and one of these words, or a JSON escape that could spell them.
func mayCarrySecret(msg []byte) bool {
	if bytes.IndexByte(msg, '\\') >= 0 {
		return true
	}
	if !bytes.Contains(msg, []byte("execute")) && !bytes.Contains(msg, []byte("exec-oob")) {
		return false
	}
	lower := bytes.ToLower(msg)
	for _, w := range []string{"pass", "data", "command-line", "qom-"} {
		if bytes.Contains(lower, []byte(w)) {
			return true
		}
	}
	return false
}

// passwordKey reports whether a member named key holds a password.
func passwordKey(key string) bool {
	k := strings.ToLower(key)
	return k == "password" || k == "passwd" || strings.HasSuffix(k, "-password") ||
		strings.HasSuffix(k, "_password") || strings.HasSuffix(k, "-passwd")
}

// secretProperty reports whether a QOM property named p may hold a
// secret: a secret object's data, or a password.
func secretProperty(p string) bool { return p == "data" || passwordKey(p) }

// redactValue hides the secrets in v, a decoded JSON value, in place, and
// reports whether there were any.
func redactValue(v any) bool {
	hid := false
	switch v := v.(type) {
	case map[string]any:
		if t, _ := v["qom-type"].(string); t == "secret" {
			if _, ok := v["data"]; ok {
				v["data"] = redactedValue
				hid = true
			}
			if props, ok := v["props"].(map[string]any); ok {
				if _, ok := props["data"]; ok {
					props["data"] = redactedValue
					hid = true
				}
			}
		}
		for k, x := range v {
			switch {
			case passwordKey(k):
				v[k] = redactedValue
				hid = true
			case k == "command-line":
				if s, ok := x.(string); ok && shell.CarriesSecret(s) {
					first, _, _ := strings.Cut(strings.TrimSpace(s), " ")
					v[k] = first + " " + redactedValue
					hid = true
				}
			default:
				if redactValue(x) {
					hid = true
				}
			}
		}
	case []any:
		for _, x := range v {
			if redactValue(x) {
				hid = true
			}
		}
	}
	return hid
}

// marshalTraffic encodes a redacted message for the traffic line; its
// members come out in Go's order, not as they were sent.
func marshalTraffic(v map[string]any) []byte {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if e.Encode(v) != nil {
		return []byte(`"` + redactedValue + `"`)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
