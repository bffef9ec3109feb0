package shell

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// openForQEMU never waits for a FIFO's other end, and hands QEMU a
// blocking descriptor: the file status flags are shared with QEMU's copy.
func TestOpenForQEMU(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, flag := range []int{os.O_RDONLY, os.O_RDWR} {
		f, err := openForQEMU(fifo, flag)
		if err != nil {
			t.Fatalf("flag %#x: %v", flag, err)
		}
		fl, _, errno := syscall.Syscall(syscall.SYS_FCNTL, f.Fd(), syscall.F_GETFL, 0)
		if errno != 0 || fl&syscall.O_NONBLOCK != 0 {
			t.Errorf("flag %#x: status flags %#o (%v): want blocking", flag, fl, errno)
		}
		f.Close()
	}
	if _, err := openForQEMU(fifo, os.O_WRONLY); err == nil || !strings.Contains(err.Error(), "nothing reads") {
		t.Errorf("write-only FIFO without a reader: %v", err)
	}
	if _, err := openForQEMU(dir, os.O_RDONLY); err == nil || err.Error() != dir+" is a directory: pass a file" {
		t.Errorf("directory: %v", err)
	}
	if _, err := openForQEMU(filepath.Join(dir, "missing"), os.O_RDWR); !os.IsNotExist(err) {
		t.Errorf("missing file: %v", err)
	}
}
