package shell

import (
	"regexp"
	"strings"
	"sync"
)

// Some block drivers take their credentials inside a disk's location
// instead of as an option of their own, and QEMU repeats a location it
// cannot open in its error message: the patterns below find them.
var (
	// urlUserinfo is a URL's user information, scheme://USERINFO@.
	urlUserinfo = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.-]*)://([^/?#@\s"'\\]*)@`)
	})
	// rbdKey is the cephx key in Ceph's rbd: filename,
	// rbd:POOL/IMAGE:id=USER:key=KEY:conf=FILE.
	rbdKey = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?i)\brbd:[^\s"']*?:key=([^:\s"',\\]+)`)
	})
)

// LocationSecrets returns the secrets written into the disk locations s
// holds, as they are written: the password of a URL's user information
// (https://USER:PASSWORD@HOST/..., and libiscsi's
// iscsi://USER%PASSWORD@HOST/...) and the key of an rbd:...:key=KEY.
func LocationSecrets(s string) []string {
	if !strings.Contains(s, "@") && !strings.Contains(strings.ToLower(s), "rbd:") {
		return nil // most lines: no regular expression run
	}
	var found []string
	for _, m := range urlUserinfo().FindAllStringSubmatch(s, -1) {
		sep := ":"
		if strings.EqualFold(m[1], "iscsi") {
			sep = "%" // libiscsi's own syntax; elsewhere % escapes
		}
		if _, password, ok := strings.Cut(m[2], sep); ok && password != "" {
			found = append(found, password)
		}
	}
	for _, m := range rbdKey().FindAllStringSubmatch(s, -1) {
		found = append(found, m[1])
	}
	return found
}
