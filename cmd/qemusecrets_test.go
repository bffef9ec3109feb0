package cmd

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

func TestQEMUSecrets(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want []string
	}{
		{[]string{"qemu", "-object", "secret,id=s0,data=pw1"}, []string{"secret,id=s0,data=pw1", "pw1"}},
		{[]string{"qemu", "--object", "secret,data=pw2,id=s0,format=raw"}, []string{"secret,data=pw2,id=s0,format=raw", "pw2"}},
		{[]string{"qemu", "-object", "secret,id=s0,data=a,,b"}, []string{"secret,id=s0,data=a,,b", "a,,b", "a,b"}},
		{[]string{"qemu", "-object", `{"qom-type":"secret","id":"s0","data":"pw3"}`},
			[]string{`{"qom-type":"secret","id":"s0","data":"pw3"}`, "pw3"}},
		// What QEMU rejects, and so quotes: the whole option.
		{[]string{"qemu", "-object", `{'qom-type':'secret','id':'s0','data':'pw4'}`}, []string{`{'qom-type':'secret','id':'s0','data':'pw4'}`}},
		{[]string{"qemu", "--object=secret,id=s0,data=pw5"}, []string{"secret,id=s0,data=pw5", "pw5"}},
		{[]string{"qemu", "-object", "secret,id=s0,Data=pw6"}, []string{"secret,id=s0,Data=pw6"}},
		{[]string{"qemu", "-object", "secrte,id=s0,data=pw7"}, []string{"secrte,id=s0,data=pw7", "pw7"}},
		// Passwords of other options, -set's dotted keys too.
		{[]string{"qemu", "-spice", "port=5900,password=pw8", "-set", "spice.0.password=pw8-longer"}, []string{"pw8", "pw8-longer"}},
		{[]string{"qemu", "-iscsi", "user=u,PassWord=pw9"}, []string{"pw9"}},
		// Credentials inside a disk's location, in any argument.
		{[]string{"qemu", "-drive", "file=https://u:pw10@127.0.0.1/d.img,if=none", "-cdrom", "iscsi://u%pw11@127.0.0.1/iqn.x/0"},
			[]string{"pw10", "pw11"}},
		{[]string{"qemu", "-drive", "file=rbd:p/i:id=admin:key=pw12:conf=/c,if=none"}, []string{"pw12"}},
		// Not secrets: data outside -object, a password option's
		// boolean, the id of a secret, other objects.
		{[]string{"qemu", "-drive", "file=data=x", "-vnc", ":0,password=on", "-vnc", "none,password=y"}, nil},
		{[]string{"qemu", "-drive", "file=x,password-secret=s0", "-object", "memory-backend-ram,id=m,size=1G"}, nil},
		{[]string{"qemu", "-drive", "file=https://u@127.0.0.1/d.img,if=none"}, nil},
		{[]string{"qemu", "-M", "none"}, nil},
	} {
		if got := qemuSecrets(tc.argv); !slices.Equal(got, tc.want) {
			t.Errorf("qemuSecrets(%q) = %q, want %q", tc.argv, got, tc.want)
		}
	}
}

// The writer finds a secret wherever the writes split it, in a line as
// in a line too long to hold (more than holdAtMost without a newline), and
// flush writes what it held.
func TestRedactingWriter(t *testing.T) {
	const secret = "hunter2-hunter2"
	long := strings.Repeat("x", holdAtMost+7)
	for _, text := range []string{
		"qemu: -object secret,data=" + secret + ": Invalid parameter 'bogus'\nmore " + secret + " at the end",
		long + secret + long + secret + "\n" + secret,
	} {
		want := strings.ReplaceAll(text, secret, "<redacted>")
		for cut := range len(text) {
			if len(text) > 1000 && cut%997 != 0 && (cut < holdAtMost-20 || cut > holdAtMost+len(secret)+20) {
				continue
			}
			var out bytes.Buffer
			w := newRedactingWriter(&out, []string{secret})
			w.Write([]byte(text[:cut]))
			w.Write([]byte(text[cut:]))
			w.flush()
			if out.String() != want {
				t.Fatalf("cut at %d: wrote %.200q..., want %.200q...", cut, out.String(), want)
			}
		}
	}
	// A secret that contains another goes whole, in whatever order
	// they were given.
	var out bytes.Buffer
	w := newRedactingWriter(&out, []string{"hunter", "hunter2024"})
	w.Write([]byte("data=hunter2024 password=hunter\n"))
	if want := "data=<redacted> password=<redacted>\n"; out.String() != want {
		t.Errorf("wrote %q, want %q", out.String(), want)
	}
}

// A secret on QEMU's command line never reaches its log on disk, nor
// stderr, when QEMU repeats it rejecting the option; a session whose
// command line carries one runs as any other, its unused log removed.
func TestWrapKeepsSecretsOutOfQEMULog(t *testing.T) {
	qmptest.RequireQEMU(t, "qemu-system-x86_64")
	const secret = "hunter2-in-clear"
	for _, object := range [][]string{
		{"-object", "secret,id=s0,data=" + secret + ",bogus=1"},
		{"-object", `{"qom-type": "secret", "id": "s0", "data": "` + secret + `", "bogus": 1}`},
		{"-object", `{'qom-type': 'secret', 'id': 's0', 'data': '` + secret + `', 'bogus': 1}`},
		{"-object", "secret,id=s0,Data=" + secret},
		{"--object=secret,id=s0,data=" + secret},
		// QEMU repeats a disk's location it cannot open.
		{"-drive", "file=https://alice:" + secret + "@127.0.0.1:1/disk.img,if=none"},
		{"-drive", "file=iscsi://alice%" + secret + "@127.0.0.1:1/iqn.2001-04.com.example:storage/0,if=none"},
		{"-drive", "file=rbd:pool/image:id=admin:key=" + secret + ":conf=/nonexistent/ceph.conf,if=none"},
		{"-drive", `file=json:{"driver":"https",,"url":"https:\/\/alice:` + secret + `@127.0.0.1:1/d.img"},if=none`},
		{"-blockdev", `{"driver":"https","read-only":true,"node-name":"h","url":"https://alice:` + secret + `\u0040127.0.0.1:1/d.img"}`},
		{"-drive", "file=https://alice:" + secret + "'x@127.0.0.1:1/disk.img,if=none"},
	} {
		_, tmp := wrapDirs(t)
		r := run(t, "", append(append([]string{"wrap", "--"}, wrapQEMU...), object...)...)
		r.mustExit(t, ExitConnection)
		logs, _ := filepath.Glob(filepath.Join(tmp, "qmpsh-wrap-*.log"))
		if len(logs) != 1 {
			t.Fatalf("QEMU's logs: %q, want one", logs)
		}
		b, err := os.ReadFile(logs[0])
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(secret)) || !bytes.Contains(b, []byte("<redacted>")) {
			t.Errorf("%q: QEMU's log: %q", object, b)
		}
		if strings.Contains(r.stderr, secret) || !strings.Contains(r.stderr, "<redacted>") {
			t.Errorf("%q: stderr: %q", object, r.stderr)
		}
	}
	_, tmp := wrapDirs(t)
	r := run(t, "query-status\n", append(append([]string{"wrap", "--"}, wrapQEMU...), "-object", "secret,id=s0,data="+secret)...)
	r.mustExit(t, ExitOK)
	if !strings.Contains(r.stdout, `"running"`) {
		t.Errorf("stdout %q", r.stdout)
	}
	requireEmpty(t, tmp)
}
