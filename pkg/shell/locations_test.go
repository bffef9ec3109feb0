package shell

import (
	"slices"
	"strings"
	"testing"
)

func TestLocationSecrets(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want []string
	}{
		{"file=https://alice:hunter2@example.com/disk.img,if=none", []string{"hunter2"}},
		{"HTTP://alice:hunter2@example.com/x https://bob:pw%40x@h/y", []string{"hunter2", "pw%40x"}},
		{`{"url": "ftps://u:p4ss@h/x"}`, []string{"p4ss"}},
		// libiscsi's user%password; elsewhere % escapes a byte.
		{"iscsi://alice%hunter2@10.0.0.1/iqn.2001-04.com.example:storage/0", []string{"hunter2"}},
		{"https://alice%40corp:hunter2@h/x", []string{"hunter2"}},
		{"rbd:pool/image:id=admin:key=AQBhunter2==:conf=/etc/ceph/ceph.conf", []string{"AQBhunter2=="}},
		{"file=rbd:pool/image:key=K3y,if=none", []string{"K3y"}},
		// An apostrophe may stand in a URL's user information.
		{"https://alice:pw'9@h/d.img", []string{"pw'9"}},
		// No password: a user alone, an @ past the authority, no URL.
		{"https://alice@example.com/x", nil},
		{"https://alice:@example.com/x", nil},
		{"http://example.com:8080/path@v2", nil},
		{"iscsi://alice@10.0.0.1/iqn/0", nil},
		{"ssh://alice@host/disk user@host:pw", nil},
		{"rbd:pool/image:id=admin:conf=/etc/ceph/ceph.conf", nil},
		{"query-status", nil},
		// Through JSON's escapes, as spelled: a json: filename, a
		// -blockdev, a reply (QEMU escapes a quote and what is not
		// ASCII), a json: filename inside a reply's string.
		{`file=json:{"driver":"https",,"url":"https:\/\/alice:PW1@127.0.0.1:1/d.img"}`, []string{"PW1"}},
		{`{"driver":"https","url":"https://alice:PW2\u0040127.0.0.1:1/d.img"}`, []string{"PW2"}},
		{`{"file": "http://alice:p\"w\u00E93@127.0.0.1:18080/d.img"}`, []string{`p\"w\u00E93`}},
		{`{"file": "json:{\"driver\": \"https\", \"url\": \"https://alice:p\\\"w4@h/d\"}"}`, []string{`p\\\"w4`}},
		{`{"a": "\ud83d\ude00 https://u:pw5@h/"}`, []string{"pw5"}},
		{`{"file": "https://alice@h/d.img", "note": "x\"y@z"}`, nil},
	} {
		if got := LocationSecrets(tc.s); !slices.Equal(got, tc.want) {
			t.Errorf("LocationSecrets(%q) = %q, want %q", tc.s, got, tc.want)
		}
	}
}

// Each is hidden where it stands: a short password elsewhere in the
// line stays.
func TestHideLocationSecrets(t *testing.T) {
	for _, tc := range []struct{ s, want string }{
		{"a https://a:a@h/a rbd:a/a:key=a:conf=/a", "a https://a:X@h/a rbd:a/a:key=X:conf=/a"},
		{"iscsi://u%p@h/iqn/0 and https://u:p@h/", "iscsi://u%X@h/iqn/0 and https://u:X@h/"},
		{"https://alice@h/x", "https://alice@h/x"},
		{`{"file": "json:{\"url\": \"https://a:p\\\"w@h/\"}", "x": "https:\/\/a:b\u0040h"}`,
			`{"file": "json:{\"url\": \"https://a:X@h/\"}", "x": "https:\/\/a:X\u0040h"}`},
	} {
		got, ok := HideLocationSecrets(tc.s, "X")
		if got != tc.want || ok != (tc.s != tc.want) {
			t.Errorf("HideLocationSecrets(%q) = %q, %v; want %q", tc.s, got, ok, tc.want)
		}
	}
}

// Whatever the input, hiding never panics, and what is left in a
// location's secret place is the replacement.
func FuzzHideLocationSecrets(f *testing.F) {
	for _, s := range []string{
		"https://alice:pw@h/d", `{"file": "json:{\"url\": \"https://a:p\\\"w@h/\"}"}`,
		`https:\/\/a:b\u0040h`, "rbd:p/i:key=K:conf=/c", `\ud83d\ude00 iscsi://u%p@h/`, `\u00`, `\`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, _ := HideLocationSecrets(s, "HIDDEN")
		for _, left := range LocationSecrets(got) {
			if left != "HIDDEN" && !strings.Contains(left, "HIDDEN") {
				t.Fatalf("HideLocationSecrets(%q) = %q, which still holds %q", s, got, left)
			}
		}
	})
}

func TestContainsFold(t *testing.T) {
	for _, tc := range []struct {
		s, sub string
		want   bool
	}{
		{"file=RBD:p/i", "rbd:", true},
		{"x Rbd:", "rbd:", true},
		{"rbd", "rbd:", false},
		{"rb", "rbd", false},
		{"", "rbd", false},
		{`a\U0040b`, `\u0040`, true},
		{`a\u004`, `\u0040`, false},
		{"rrrbd", "rbd", true},
	} {
		if got := containsFold(tc.s, tc.sub); got != tc.want {
			t.Errorf("containsFold(%q, %q) = %v, want %v", tc.s, tc.sub, got, tc.want)
		}
	}
}
