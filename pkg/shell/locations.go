package shell

import (
	"regexp"
	"slices"
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
	var found []string
	for _, span := range locationSecrets(s) {
		found = append(found, s[span[0]:span[1]])
	}
	return found
}

// HideLocationSecrets returns s with each of LocationSecrets replaced by
// hidden where it stands (https://alice:HIDDEN@host/...), and whether
// there was any.
func HideLocationSecrets(s, hidden string) (string, bool) {
	spans := locationSecrets(s)
	if len(spans) == 0 {
		return s, false
	}
	var b strings.Builder
	last := 0
	for _, span := range spans {
		if span[0] < last {
			continue // within one already hidden
		}
		b.WriteString(s[last:span[0]])
		b.WriteString(hidden)
		last = span[1]
	}
	b.WriteString(s[last:])
	return b.String(), true
}

// locationSecrets returns where in s its LocationSecrets are, in order.
func locationSecrets(s string) [][2]int {
	rbd := strings.Contains(strings.ToLower(s), "rbd:")
	if !rbd && !strings.Contains(s, "@") {
		return nil // most lines: no regular expression run
	}
	var spans [][2]int
	for _, m := range urlUserinfo().FindAllStringSubmatchIndex(s, -1) {
		sep := ":"
		if strings.EqualFold(s[m[2]:m[3]], "iscsi") {
			sep = "%" // libiscsi's own syntax; elsewhere % escapes
		}
		if i := strings.Index(s[m[4]:m[5]], sep); i >= 0 && m[4]+i+1 < m[5] {
			spans = append(spans, [2]int{m[4] + i + 1, m[5]})
		}
	}
	if rbd {
		for _, m := range rbdKey().FindAllStringSubmatchIndex(s, -1) {
			spans = append(spans, [2]int{m[2], m[3]})
		}
	}
	slices.SortFunc(spans, func(a, b [2]int) int { return a[0] - b[0] })
	return spans
}
