package qmp_test

import (
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
