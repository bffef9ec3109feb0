package qmptest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// listenerPid returns the pid of the process listening on the UNIX
// socket at path (QEMU, for its monitor's), from the credentials of a
// connection to it. The connection is closed at once: a monitor serving
// another client never sees it.
func listenerPid(path string) (int, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	raw, err := c.(*net.UnixConn).SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, fmt.Errorf("SO_PEERCRED: %w", cerr)
	}
	return int(cred.Pid), nil
}

// FileExecutor is a QMP client that passes files with a command
// (qmp.Client's ExecuteWithFiles).
type FileExecutor interface {
	ExecuteWithFiles(ctx context.Context, command string, args any, files ...*os.File) (json.RawMessage, error)
}

// CheckAddFDConcurrently has each of clients, connected to the QEMU whose
// monitor listens on sock (directly or not), pass each files with
// add-fd, all at the same time, and
// checks that every call succeeded and that QEMU holds each file under
// the opaque string it was passed with. QEMU keeps only the descriptors
// of the last message that brought some and, with oob, reads ahead of
// the command it runs: a client that lets two such requests reach it
// together mixes them up.
func CheckAddFDConcurrently(t testing.TB, ctx context.Context, sock string, clients []FileExecutor, each int) {
	t.Helper()
	pid, err := listenerPid(sock)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	errs := make(chan error, len(clients))
	for k, c := range clients {
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
	ret, err := clients[0].ExecuteWithFiles(ctx, "query-fdsets", nil)
	if err != nil {
		t.Fatal(err)
	}
	files, err := fdSetFiles(pid, ret)
	if err != nil {
		t.Fatal(err)
	}
	for opaque, file := range files {
		if filepath.Base(file) != opaque {
			t.Errorf("the file passed as %s is %s in QEMU", opaque, file)
		}
	}
	if len(files) != len(clients)*each {
		t.Errorf("QEMU holds %d descriptors in fd sets; want %d", len(files), len(clients)*each)
	}
}

// fdSetFiles reads query-fdsets' return value, ret, from the QEMU whose
// pid is pid, and returns what file each descriptor with an opaque
// string is in QEMU (its /proc/PID/fd link), by that string: how a test
// checks that the file passed with add-fd is the one QEMU holds.
func fdSetFiles(pid int, ret json.RawMessage) (map[string]string, error) {
	var sets []struct {
		Fds []struct {
			Fd     int    `json:"fd"`
			Opaque string `json:"opaque"`
		} `json:"fds"`
	}
	if err := json.Unmarshal(ret, &sets); err != nil {
		return nil, fmt.Errorf("query-fdsets returned %.80s: %w", ret, err)
	}
	files := map[string]string{}
	for _, s := range sets {
		for _, fd := range s.Fds {
			if fd.Opaque == "" {
				continue
			}
			link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd.Fd))
			if err != nil {
				return nil, err
			}
			files[fd.Opaque] = link
		}
	}
	return files, nil
}
