package qmp_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// Calls passing files at the same time on one client each get their own
// file in QEMU (see qmptest.CheckAddFDConcurrently).
func TestExecuteWithFilesConcurrent(t *testing.T) {
	sock := qmptest.StartQEMU(t)
	c := connect(t, sock)
	clients := []qmptest.FileExecutor{c, c, c, c}
	qmptest.CheckAddFDConcurrently(t, testContext(t), sock, clients, 15)
}

// A getfd or add-fd run without files (by Execute or Raw) beside one
// passing files must not take the other's descriptor: QEMU gives it
// whatever descriptors the monitor holds, and with oob reads the next
// message, descriptors and all, before it runs the command. It gets
// QEMU's "No file descriptor supplied", and the call with the file gets
// its file.
func TestExecuteWithoutFilesBesideFiles(t *testing.T) {
	sock := qmptest.StartQEMU(t)
	c := connect(t, sock)
	ctx := testContext(t)
	dir := t.TempDir()
	const rounds = 40
	errs := make(chan error, 2)
	go func() {
		for i := range rounds {
			f, err := os.Create(filepath.Join(dir, fmt.Sprint(i)))
			if err == nil {
				_, err = c.ExecuteWithFiles(ctx, "add-fd", map[string]string{"opaque": fmt.Sprint(i)}, f)
				f.Close()
			}
			if err != nil {
				errs <- fmt.Errorf("add-fd with a file, round %d: %w", i, err)
				return
			}
		}
		errs <- nil
	}()
	go func() {
		for i := range rounds {
			var err error
			if i%2 == 0 {
				_, err = c.Execute(ctx, "add-fd", map[string]string{"opaque": fmt.Sprint("none", i)})
			} else { // a raw message too
				_, err = c.Raw(ctx, json.RawMessage(fmt.Sprintf(`{"execute":"add-fd","arguments":{"opaque":"none%d"}}`, i)))
			}
			if err == nil || !strings.Contains(err.Error(), "No file descriptor supplied") {
				errs <- fmt.Errorf("add-fd without a file, round %d: got %v; want QEMU's No file descriptor supplied", i, err)
				return
			}
		}
		errs <- nil
	}()
	for range 2 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
