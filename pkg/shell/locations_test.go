package shell

import (
	"slices"
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
		// No password: a user alone, an @ past the authority, no URL.
		{"https://alice@example.com/x", nil},
		{"https://alice:@example.com/x", nil},
		{"http://example.com:8080/path@v2", nil},
		{"iscsi://alice@10.0.0.1/iqn/0", nil},
		{"ssh://alice@host/disk user@host:pw", nil},
		{"rbd:pool/image:id=admin:conf=/etc/ceph/ceph.conf", nil},
		{"query-status", nil},
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
	} {
		got, ok := HideLocationSecrets(tc.s, "X")
		if got != tc.want || ok != (tc.s != tc.want) {
			t.Errorf("HideLocationSecrets(%q) = %q, %v; want %q", tc.s, got, ok, tc.want)
		}
	}
}
