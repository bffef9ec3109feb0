package shell

import (
	"regexp"
	"strings"
	"sync"
)

// The patterns are compiled when history is first written, not at
// start-up: qmpsh exec never needs them.
var (
	// historyKey finds the keys of key=value words (also inside HMP's
	// comma-separated options) and of JSON members.
	historyKey = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`([A-Za-z0-9_.-]+)=|"([^"\\]+)"\s*:`)
	})
	// historySecretType is a secret object's type, in any of the shell's,
	// JSON's or HMP's spellings: qom-type=secret, "secret", secret,id=...
	historySecretType = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(^|[^A-Za-z0-9_-])secret([^A-Za-z0-9_-]|$)`)
	})
)

// KeepInHistory reports whether line may be written to the history file.
// Lines that carry a secret are not: a secret object's data, and any
// password-like argument (password, passwd, new-secret, keys ending in
// password or secret), as key=value, as a JSON member, or as an HMP
// command about passwords (set_password, block_passwd). The test is on
// the words alone, so it errs on the side of forgetting.
func KeepInHistory(line string) bool {
	lower := strings.ToLower(line)
	if strings.Contains(lower, "password") || strings.Contains(lower, "passwd") {
		return false
	}
	data := false
	for _, m := range historyKey().FindAllStringSubmatch(lower, -1) {
		key := m[1] + m[2]
		key = key[strings.LastIndex(key, ".")+1:] // options.new-secret
		switch {
		case strings.HasSuffix(key, "secret"):
			return false
		case key == "data":
			data = true
		}
	}
	return !(data && historySecretType().MatchString(lower))
}
