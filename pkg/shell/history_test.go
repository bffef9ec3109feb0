package shell

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeepInHistory(t *testing.T) {
	for _, tc := range []struct {
		line string
		keep bool
	}{
		{"query-status", true},
		{"", true},
		{"qom-get path=/machine property=type", true},
		{"object-add qom-type=iothread id=io0", true},
		{`{"execute": "query-block"}`, true},
		{"blockdev-add driver=file node-name=f0 filename=/data/secret-plans.img", true},
		{"object-add qom-type=secret id=s0 data=hunter2", false},
		{"object-add qom-type=secret id=s0 format=base64 data=aHVudGVyMg==", false},
		{"object-add id=s0 data=hunter2 qom-type=secret", false},
		{`{"execute": "object-add", "arguments": {"qom-type": "secret", "id": "s0", "data": "hunter2"}}`, false},
		{`{"execute":"object-add","arguments":{"qom-type":"secret","id":"s0","data":"hunter2"}}`, false},
		{"hmp object_add secret,id=s0,data=hunter2", false},
		{"set_password protocol=vnc password=hunter2", false},
		{"change-vnc-password password=hunter2", false},
		{`{"execute": "set_password", "arguments": {"protocol": "vnc", "password": "hunter2"}}`, false},
		{"hmp set_password vnc hunter2", false},
		{"hmp block_passwd drive0 hunter2", false},
		{"blockdev-add driver=rbd node-name=r0 pool=p image=i user=u key-secret=sec0", false},
		{"blockdev-amend node-name=l0 options.driver=luks options.new-secret=sec1 options.state=active", false},
		{`{"execute": "x", "arguments": {"NEW-SECRET": "a"}}`, false},
		{"migrate-set-parameters tls-creds=c tls-passwd=p", false},
		// What QEMU receives, not just what was typed: the shell removes
		// quotes and backslashes, JSON's escapes spell any key or value,
		// and QEMU's JSON parser takes single quotes.
		{`object-add qom-type=secret id=s0 "data"=hunter2`, false},
		{`object-add qom-type=secret id=s0 d"at"a=hunter2`, false},
		{`object-add qom-type=secret id=s0 d\ata=hunter2`, false},
		{`object-add qom-type=sec'ret' id=s0 data=hunter2`, false},
		{`object-add qom-type="secret" id=s0 data=hunter2`, false},
		{`{"execute":"object-add","arguments":{"qom-type":"secret","id":"s0","d\u0061ta":"hunter2"}}`, false},
		{`{"execute":"object-add","arguments":{"qom-type":"s\u0065cret","id":"s0","data":"hunter2"}}`, false},
		{`{"execute":"guest-set-user-p\u0061ssword","arguments":{"p\u0061ssword":"hunter2"}}`, false},
		{`{"execute":"human-monitor-command","arguments":{"command-line":"set_p\u0061ssword vnc hunter2"}}`, false},
		{`{'execute':'object-add','arguments':{'qom-type':'secret','id':'s0','data':'hunter2'}}`, false},
		{`{'execute':'guest-set-user-p\u0061ssword','arguments':{'p\u0061ssword':'hunter2'}}`, false},
		// qom-set of a secret's data or a password: QEMU stores it.
		{`{"execute": "qom-set", "arguments": {"path": "/objects/s0", "property": "data", "value": "x"}}`, false},
		{`{"execute":"qom-set","arguments":{"path":"/objects/s0","property":"d\u0061ta","value":"x"}}`, false},
		{"qom-set path=/objects/s0 property=data value=hunter2", false},
		{"qom-set path=/objects/v0 property=tls-password value=hunter2", false},
		{"hmp qom-set /objects/s0 data hunter30", false},
		{"hmp qom-set\t/objects/s0\tdata\thunter30", false},
		{"qom-get path=/objects/s0 property=data", true},
		{"qom-set path=/machine/peripheral/n0 property=x-data-plane value=true", true},
		// HMP's object_add takes JSON, escapes and all, typed at the shell
		// or in a raw QMP line's command-line.
		{`hmp object_add {"qom-type":"secret","id":"s20","d\u0061ta":"hunter20"}`, false},
		{`{"execute":"human-monitor-command","arguments":{"command-line":"object_add {\"qom-type\":\"secret\",\"id\":\"s20\",\"d\\u0061ta\":\"hunter20\"}"}}`, false},
		{"hmp object_add\tsecret,id=s1,data=hunter3", false},
		// A line the lexer rejects is tested without its quotes.
		{`object-add qom-type=secret id=s0 d"ata=hunter2`, false},
		{`object-add qom-type=secret id=s0 'data=hunter2`, false},
		{`query-status "unclosed`, true},
		{`{"execute": "query-status", "id": "d\u0061ta"}`, true},
		{`object-add qom-type=iothread id="a b"`, true},
		// Credentials inside a disk's location.
		{"blockdev-add driver=https node-name=h0 url=https://alice:hunter2@example.com/disk.img", false},
		{`{"execute":"blockdev-add","arguments":{"driver":"rbd","node-name":"r0","filename":"rbd:p/i:id=admin:key=AQBhunter2==:conf=/etc/ceph.conf"}}`, false},
		{"hmp drive_add 0 if=none,id=d0,file=iscsi://alice%hunter2@10.0.0.1/iqn.2001-04.com.example:storage/0", false},
		{"blockdev-add driver=https node-name=h0 url=https://alice@example.com/disk.img", true},
		{"blockdev-add driver=nbd node-name=n0 server.type=inet server.host=10.0.0.1 export=disk@2", true},
	} {
		if got := KeepInHistory(tc.line); got != tc.keep {
			t.Errorf("KeepInHistory(%q) = %v, want %v", tc.line, got, tc.keep)
		}
	}
}

// The history file is private from its creation, and secrets typed at
// the prompt never reach it.
func TestHistoryFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "qmpsh")
	path := filepath.Join(dir, "history")
	in := "query-status\nobject-add qom-type=secret id=s0 data=hunter2\nquery-version\n"
	ed, err := NewTerminalEditor(TerminalConfig{
		Stdin:       io.NopCloser(strings.NewReader(in)),
		Stdout:      io.Discard,
		HistoryFile: path,
	})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("history file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	if di, err := os.Stat(dir); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("history directory: %v; want mode 0700", err)
	}
	var lines []string
	for {
		l, err := ed.ReadLine()
		if err != nil {
			break
		}
		lines = append(lines, l)
	}
	ed.Close()
	if len(lines) != 3 {
		t.Fatalf("read %q", lines)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); got != "query-status\nquery-version\n" {
		t.Errorf("history file holds %q", got)
	}
}
