//go:build linux

package proxy

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// Clients passing descriptors at the same time each get their own file
// in QEMU: QEMU keeps only the last message's descriptors and reads
// ahead of the command it runs, so the proxy must not let a second
// request with descriptors reach it before the first's reply.
func TestSendFDConcurrent(t *testing.T) {
	sock := qmptest.StartQEMU(t)
	pid := peerPid(t, sock)
	h := startProxy(t, sock, nil)
	ctx := ctxT(t)
	dir := t.TempDir()
	const clients, each = 4, 15
	errs := make(chan error, clients)
	for k := range clients {
		c := h.client()
		go func() {
			for i := range each {
				name := fmt.Sprintf("c%d-%d", k, i)
				f, err := os.Create(filepath.Join(dir, name))
				if err == nil {
					_, err = c.ExecuteWithFiles(ctx, "add-fd", map[string]string{"opaque": name}, f)
					f.Close()
				}
				if err != nil {
					errs <- fmt.Errorf("add-fd %s: %w", name, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	ret, err := h.client().Execute(ctx, "query-fdsets", nil)
	if err != nil {
		t.Fatal(err)
	}
	var sets []struct {
		Fds []struct {
			Fd     int    `json:"fd"`
			Opaque string `json:"opaque"`
		} `json:"fds"`
	}
	if err := json.Unmarshal(ret, &sets); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range sets {
		for _, fd := range s.Fds {
			n++
			got, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd.Fd))
			if err != nil || filepath.Base(got) != fd.Opaque {
				t.Errorf("QEMU's fd %d, passed as %s, is %s (%v)", fd.Fd, fd.Opaque, got, err)
			}
		}
	}
	if n != clients*each {
		t.Errorf("QEMU holds %d descriptors in fd sets; want %d", n, clients*each)
	}
}

// peerPid is the pid of the process listening on the UNIX socket path,
// from the credentials of a connection to it.
func peerPid(t *testing.T, path string) int {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, err := c.(*net.UnixConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var cred *syscall.Ucred
	var cerr error
	raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	if cerr != nil {
		t.Skipf("SO_PEERCRED: %v", cerr)
	}
	return int(cred.Pid)
}
