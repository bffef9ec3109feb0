package cmd

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"

	"github.com/qmpsh/qmpsh/pkg/shell"
)

// redactedValue replaces a secret in the traffic that -v shows and --log
// writes.
const redactedValue = "<redacted>"

// maxPendingSecrets bounds the requests whose replies a redactor waits
// for: entries are dropped when their reply comes, when who's session
// ends (forget), and, past this many, the oldest, so that a peer that
// never reads its replies cannot make the set grow for ever.
const maxPendingSecrets = 1024

// redactor hides secrets in traffic lines, so that they never reach the
// --log file (or a -v display redirected to one) in clear. What it hides:
//
//   - in a request, the value of any member named password or passwd or
//     ending in -password, _password or -passwd (set_password,
//     change-vnc-password, guest-set-user-password), however deep; the
//     data of a secret object (object-add, or its props); the value a
//     qom-set gives a property named data or a password; and, after its
//     first word, an HMP command line that CarriesSecret (set_password,
//     object_add secret,..., qom-set PATH data VALUE);
//   - in a reply, the return value of a qom-get of such a property, QMP's
//     or HMP's (QEMU gives a secret's data back), of any qom-list-get
//     (every property's value), and of an HMP command line that was
//     hidden.
//
// Names of secret objects (key-secret=sec0) are not secrets and stay. A
// message that is not JSON but whose words carry a secret is hidden
// whole. The caller serialises calls.
type redactor struct {
	// pending holds "WHO\x00ID" (ID as JSON, "" for none) for the
	// requests whose replies must be hidden: how many (a client may
	// reuse an id while a request with it is in flight) and the order
	// the first came in. WHO tells a proxy's peers apart.
	pending map[string]awaited
	seq     uint64
	// hidden holds the return values of the replies hidden lately, for
	// a while (left: replies it may still be asked about), in memory
	// only: the proxy hands QEMU's reply on to its client byte for byte
	// but for the id, so the client's copy of a secret is hidden by its
	// value even when the client's id did not pair it with its request
	// (a client that reused an id in flight).
	hidden [][]byte // copies, the latest last, at most maxHidden
	left   int
	// tainted holds the peers that sent a secret in a message that was
	// not JSON (a tab or a newline in a string is a lexical error): the
	// parser's errors to them quote pieces of what they sent, so the
	// quoted part of each is hidden from then on. cut holds those whose
	// stream is still in the remains of such a message: until their
	// next request, what they send that is no request (the pieces the
	// parser read after the error: a word, a number of the secret's) is
	// hidden whole.
	tainted, cut map[string]bool
}

// hiddenFor is how many replies a hidden return value is looked for in;
// maxHidden how many are kept.
const hiddenFor, maxHidden = 1024, 64

// awaited is a pending entry: n replies to hide, the first requested
// seq-th.
type awaited struct{ seq, n uint64 }

// message returns msg, from or to who, with its secrets hidden: msg itself
// when it has none.
func (r *redactor) message(who string, msg []byte) []byte {
	if r.cut[who] {
		var v map[string]json.RawMessage
		switch {
		case json.Unmarshal(msg, &v) != nil || v == nil:
			return []byte(`"` + redactedValue + ` (not JSON)"`)
		case hasMember(v, "execute", "exec-oob"):
			delete(r.cut, who) // the peer's next request: the remains are over
		case !hasMember(v, "return", "error", "event", "QMP"):
			return []byte(`"` + redactedValue + `"`)
		}
	}
	if len(r.pending) > 0 || r.left > 0 || len(r.tainted) > 0 {
		// Only replies, and greetings, concern what is pending: most
		// messages (events, requests) are not decoded for it. QEMU and
		// the proxy write these members plainly, never escaped.
		if bytes.Contains(msg, []byte(`"return"`)) || bytes.Contains(msg, []byte(`"error"`)) {
			if out, ok := r.reply(who, msg); ok {
				return out
			}
		} else if bytes.Contains(msg, []byte(`"QMP"`)) {
			r.greeting(who, msg)
		}
	}
	if !mayCarrySecret(msg) {
		return hideLocations(msg)
	}
	// Only the members a secret can be in are decoded deeply; the rest,
	// an object-add's id say, stay as they were written.
	var v map[string]json.RawMessage
	if json.Unmarshal(msg, &v) != nil || v == nil {
		if shell.CarriesSecret(string(msg)) {
			if r.tainted == nil {
				r.tainted, r.cut = map[string]bool{}, map[string]bool{}
			}
			r.tainted[who] = true
			if !balanced(msg) { // cut short by a lexical error
				r.cut[who] = true
			}
			return []byte(`"` + redactedValue + ` (not JSON)"`)
		}
		return msg
	}
	_, request := v["execute"]
	if _, oob := v["exec-oob"]; oob {
		request = true
	}
	if !request {
		return hideLocations(msg)
	}
	var command string
	if json.Unmarshal(v["execute"], &command) != nil || command == "" {
		json.Unmarshal(v["exec-oob"], &command)
	}
	args, _ := decodeTraffic(v["arguments"]).(map[string]any)
	hid := redactValue(args)
	switch command {
	case "qom-get":
		if p, _ := args["property"].(string); secretProperty(p) {
			r.expect(who, v["id"])
		}
	case "qom-list-get":
		// QEMU >= 10.1: every property's value of each path, a secret's
		// data included. Hidden whole rather than picked through.
		r.expect(who, v["id"])
	case "qom-set":
		if p, _ := args["property"].(string); secretProperty(p) {
			if _, ok := args["value"]; ok {
				args["value"] = redactedValue
				hid = true
			}
		}
	case "human-monitor-command":
		line, _ := args["command-line"].(string)
		if hid || hmpGetsSecret(line) {
			r.expect(who, v["id"])
		}
	}
	if !hid {
		return msg
	}
	a, err := encodeTraffic(args)
	if err != nil {
		return []byte(`"` + redactedValue + `"`)
	}
	v["arguments"] = a
	return marshalTraffic(v)
}

// hmpGetsSecret reports whether an HMP command line gives a secret back:
// qom-get PATH PROPERTY of a data or password property. HMP splits its
// words on any white space, tabs too.
func hmpGetsSecret(line string) bool {
	w := strings.Fields(line)
	return len(w) >= 3 && w[0] == "qom-get" && secretProperty(w[2])
}

// reply hides the return value of a reply r waits for, and reports
// whether msg was one.
func (r *redactor) reply(who string, msg []byte) ([]byte, bool) {
	var v map[string]json.RawMessage
	if json.Unmarshal(msg, &v) != nil {
		return nil, false
	}
	value, ret := v["return"]
	_, fail := v["error"]
	if !(ret || fail) {
		return nil, false
	}
	if fail && r.tainted[who] {
		if out, ok := hideQuoted(v); ok {
			return out, true
		}
	}
	if r.left > 0 {
		if r.left--; r.left == 0 {
			clear(r.hidden)
			r.hidden = r.hidden[:0]
		}
	}
	key := pendingKey(who, v["id"])
	a, ok := r.pending[key]
	switch {
	case ok:
		if a.n--; a.n == 0 {
			delete(r.pending, key)
		} else {
			r.pending[key] = a
		}
		if ret {
			r.remember(value)
		}
	case !ret || !r.wasHidden(value):
		return nil, false
	}
	if !ret {
		return msg, true
	}
	v["return"] = json.RawMessage(`"` + redactedValue + `"`)
	return marshalTraffic(v), true
}

// hideQuoted hides what v, an error reply, quotes of its peer's input
// (QEMU's "JSON parse error, stray '...'", "invalid keyword '...'"),
// and reports whether there was anything.
func hideQuoted(v map[string]json.RawMessage) ([]byte, bool) {
	var e map[string]json.RawMessage
	var desc string
	if json.Unmarshal(v["error"], &e) != nil || json.Unmarshal(e["desc"], &desc) != nil || !strings.HasPrefix(desc, "JSON parse error") {
		return nil, false
	}
	i := strings.IndexByte(desc, '\'')
	if i < 0 {
		return nil, false
	}
	e["desc"], _ = encodeTraffic(desc[:i] + "'" + redactedValue + "'")
	v["error"] = marshalTraffic(e)
	return marshalTraffic(v), true
}

// balanced reports whether msg closes every brace and bracket it opens,
// outside strings in double or single quotes (QEMU takes both): a
// message QEMU's parser reads whole, not one a lexical error cut short.
func balanced(msg []byte) bool {
	depth := 0
	var quote byte
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		switch {
		case quote != 0 && c == '\\':
			i++
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		}
	}
	return depth == 0 && quote == 0
}

// hasMember reports whether v has any of keys.
func hasMember(v map[string]json.RawMessage, keys ...string) bool {
	for _, k := range keys {
		if _, ok := v[k]; ok {
			return true
		}
	}
	return false
}

// remember keeps a copy of a hidden return value for hiddenFor replies
// more.
func (r *redactor) remember(value json.RawMessage) {
	if len(r.hidden) == maxHidden {
		r.hidden[0] = nil
		r.hidden = r.hidden[1:]
	}
	r.hidden = append(r.hidden, bytes.Clone(value))
	r.left = hiddenFor
}

// wasHidden reports whether value is one remember keeps.
func (r *redactor) wasHidden(value json.RawMessage) bool {
	return slices.ContainsFunc(r.hidden, func(h []byte) bool { return bytes.Equal(h, value) })
}

// greeting forgets who's pending replies when msg is a QMP greeting: a
// new session (connect --reconnect, the proxy reconnecting to QEMU)
// starts its ids again, and the old session's replies will never come.
func (r *redactor) greeting(who string, msg []byte) {
	var v map[string]json.RawMessage
	if json.Unmarshal(msg, &v) != nil {
		return
	}
	if _, ok := v["QMP"]; ok {
		r.forget(who)
	}
}

// forget drops every reply r waits for from or to who: its session
// ended, or the proxy's client left.
func (r *redactor) forget(who string) {
	delete(r.tainted, who)
	delete(r.cut, who)
	prefix := who + "\x00"
	for k := range r.pending {
		if strings.HasPrefix(k, prefix) {
			delete(r.pending, k)
		}
	}
}

// expect notes that the reply to who's request id is to be hidden.
func (r *redactor) expect(who string, id json.RawMessage) {
	if r.pending == nil {
		r.pending = map[string]awaited{}
	}
	key := pendingKey(who, id)
	if a, ok := r.pending[key]; ok {
		a.n++
		r.pending[key] = a
		return
	}
	if len(r.pending) >= maxPendingSecrets {
		// Forget the oldest, the most likely to be abandoned.
		oldest, first := "", true
		for k, a := range r.pending {
			if first || a.seq < r.pending[oldest].seq {
				oldest, first = k, false
			}
		}
		delete(r.pending, oldest)
	}
	r.seq++
	r.pending[key] = awaited{seq: r.seq, n: 1}
}

// pendingKey is who's and id's key in pending: the id decoded and encoded
// again, since QEMU gives it back in its own spacing and member order.
func pendingKey(who string, id json.RawMessage) string {
	v := decodeTraffic(id)
	if v == nil {
		return who + "\x00"
	}
	b, _ := json.Marshal(v)
	return who + "\x00" + string(b)
}

// decodeTraffic decodes a member of a message, numbers as they were
// written; nil if it is absent or not JSON.
func decodeTraffic(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if d.Decode(&v) != nil {
		return nil
	}
	return v
}

// mayCarrySecretWords are the words mayCarrySecret looks for, in any
// case, indexed by their first letter.
var mayCarrySecretWords = [256]string{'p': "pass", 'd': "data", 'c': "command-line", 'q': "qom-",
	':': "://", 'r': "rbd:"} // the last two: shell.LocationSecrets

// mayCarrySecret is a cheap first look, so that most messages (events,
// a copy's file data, the schema) are not decoded: a secret needs a
// request (the replies that give one back are caught by their ids, see
// reply) and one of mayCarrySecretWords, in any case, or a JSON escape
// that could spell them.
func mayCarrySecret(msg []byte) bool {
	if bytes.IndexByte(msg, '\\') >= 0 {
		return true
	}
	if !bytes.Contains(msg, []byte("execute")) && !bytes.Contains(msg, []byte("exec-oob")) {
		return false
	}
	// One pass, without the copy bytes.ToLower would make of each
	// message (a ga cp's are up to its block size).
	for i := range msg {
		if w := mayCarrySecretWords[msg[i]|0x20]; w != "" && hasPrefixFold(msg[i:], w) {
			return true
		}
	}
	return false
}

// hasPrefixFold reports whether b starts with word, a lower-case ASCII
// word, in any case. ('\r' passes for '-': a message decoded for nothing.)
func hasPrefixFold(b []byte, word string) bool {
	if len(b) < len(word) {
		return false
	}
	for i := 0; i < len(word); i++ {
		if b[i]|0x20 != word[i] {
			return false
		}
	}
	return true
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
					// HMP splits words on any white space, tabs too.
					first := ""
					if w := strings.Fields(s); len(w) > 0 {
						first = w[0]
					}
					v[k] = first + " " + redactedValue
					hid = true
				}
			default:
				if x, ok := redactItem(x); ok {
					v[k] = x
					hid = true
				}
			}
		}
	case []any:
		for i, x := range v {
			if x, ok := redactItem(x); ok {
				v[i] = x
				hid = true
			}
		}
	}
	return hid
}

// redactItem returns x, a member's value or an array's item, with its
// secrets hidden, and whether it had any: in a string, the credentials
// inside a disk's location; in an object or an array, in place.
func redactItem(x any) (any, bool) {
	if s, ok := x.(string); ok {
		return shell.HideLocationSecrets(s, redactedValue)
	}
	return x, redactValue(x)
}

// hideLocations returns msg, not a request, with the credentials inside
// the disk locations it holds replaced where they stand: a reply gives a
// location back as it was given (query-block's file, a json: filename).
func hideLocations(msg []byte) []byte {
	url := (bytes.Contains(msg, []byte("://")) || bytes.Contains(msg, []byte(`:\/\/`))) &&
		(bytes.IndexByte(msg, '@') >= 0 || bytes.Contains(msg, []byte(`\u0040`)))
	if !url && !bytes.Contains(msg, []byte("rbd:")) {
		return msg
	}
	if s, ok := shell.HideLocationSecrets(string(msg), redactedValue); ok {
		return []byte(s)
	}
	return msg
}

// marshalTraffic encodes a redacted message for the traffic line; its
// members come out in Go's order, not as they were sent.
func marshalTraffic(v map[string]json.RawMessage) []byte {
	b, err := encodeTraffic(v)
	if err != nil {
		return []byte(`"` + redactedValue + `"`)
	}
	return b
}

// encodeTraffic encodes v as JSON on one line, <, > and & as they are.
func encodeTraffic(v any) (json.RawMessage, error) {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
