package shell

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// The patterns are compiled when history is first written, not at
// start-up: qmpsh exec never needs them.
var (
	// historyKey finds the keys of key=value words (also inside HMP's
	// comma-separated options) and of JSON members, in double quotes or
	// in the single quotes QEMU's JSON parser also takes.
	historyKey = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`([A-Za-z0-9_.-]+)=|["']([^"'\\]+)["']\s*:`)
	})
	// historySecretType is a secret object's type, in any of the shell's,
	// JSON's or HMP's spellings: qom-type=secret, "secret", secret,id=...
	historySecretType = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(^|[^A-Za-z0-9_-])secret([^A-Za-z0-9_-]|$)`)
	})
	// jsonUnicodeEscape is JSON's \uXXXX, which can spell any key.
	jsonUnicodeEscape = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`\\u[0-9A-Fa-f]{4}`)
	})
	// historyQOMSet and historyData are the words qom-set and data,
	// however delimited: qom-set's value is secret when the property is a
	// secret's data (a password property says password anyway).
	historyQOMSet = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(^|[^a-z0-9_-])qom-set([^a-z0-9_-]|$)`)
	})
	historyData = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(^|[^a-z0-9_-])data([^a-z0-9_-]|$)`)
	})
)

// KeepInHistory reports whether line may be written to the history file.
// Lines that carry a secret are not: a secret object's data, and any
// password-like argument (password, passwd, new-secret, keys ending in
// password or secret), as key=value, as a JSON member, or as an HMP
// command about passwords (set_password, block_passwd), a qom-set of a
// data or password property (QMP's or HMP's), and credentials inside a
// disk's location (https://USER:PASSWORD@..., rbd:...:key=KEY). The test
// is on the words alone, so it errs on the side of forgetting.
//
// The words are tested as typed and as QEMU receives them: the shell
// removes quotes and backslashes (`"data"=x` and `d"at"a=x` are data=x),
// and JSON's escapes spell any key ("d\u0061ta", also in HMP's JSON). A
// line the shell's lexer rejects (an unclosed quote) is never sent, but
// is tested with its quotes and backslashes removed all the same: it may
// be typed again, corrected, from the history.
func KeepInHistory(line string) bool {
	if CarriesSecret(line) {
		return false
	}
	trimmed := strings.TrimSpace(line)
	if strings.HasPrefix(trimmed, "{") {
		var v any
		if json.Unmarshal([]byte(trimmed), &v) == nil {
			return !CarriesSecret(flattenJSON(v))
		}
		// Not Go's JSON, perhaps QEMU's (single quotes): CarriesSecret
		// has decoded its escapes.
		return true
	}
	lx := lexer{s: line}
	toks, err := lx.rest()
	if err != nil {
		return !CarriesSecret(strings.NewReplacer(`"`, "", `'`, "", `\`, "").Replace(line))
	}
	return !CarriesSecret(strings.Join(words(toks), " "))
}

// CarriesSecret reports whether the words of line, as they stand, carry a
// secret or a password-like argument, by KeepInHistory's rules: a key
// ending in password, passwd or secret (any case, the last part of a
// dotted key), the words password or passwd anywhere (HMP's set_password,
// change vnc password, block_passwd), a data argument beside the word
// secret (a secret object's), the words qom-set and data (a secret's
// data set, by QMP or HMP), or credentials inside a disk's location (see
// LocationSecrets). It tests line as it stands and with JSON's
// \uXXXX escapes decoded (HMP's object_add takes JSON, and a raw QMP
// line's command-line may hold "d\\u0061ta"); it does not undo quoting.
func CarriesSecret(line string) bool {
	if carriesSecret(line) {
		return true
	}
	if !strings.Contains(line, `\u`) {
		return false
	}
	return carriesSecret(jsonUnicodeEscape().ReplaceAllStringFunc(line, func(esc string) string {
		r, _ := strconv.ParseUint(esc[2:], 16, 32)
		return string(rune(r))
	}))
}

func carriesSecret(line string) bool {
	lower := strings.ToLower(line)
	if strings.Contains(lower, "password") || strings.Contains(lower, "passwd") || len(LocationSecrets(line)) > 0 {
		return true
	}
	data := false
	for _, m := range historyKey().FindAllStringSubmatch(lower, -1) {
		key := m[1] + m[2]
		key = key[strings.LastIndex(key, ".")+1:] // options.new-secret
		switch {
		case strings.HasSuffix(key, "secret"):
			return true
		case key == "data":
			data = true
		}
	}
	if data && historySecretType().MatchString(lower) {
		return true
	}
	return historyQOMSet().MatchString(lower) && historyData().MatchString(lower)
}

// flattenJSON writes a decoded JSON value as words: each member as
// key=value, for CarriesSecret to test what QEMU will decode.
func flattenJSON(v any) string {
	var b strings.Builder
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				b.WriteString(" " + k + "=")
				walk(x)
			}
		case []any:
			for _, x := range v {
				b.WriteByte(' ')
				walk(x)
			}
		case string:
			b.WriteString(v)
		default:
			fmt.Fprint(&b, v)
		}
	}
	walk(v)
	return b.String()
}
