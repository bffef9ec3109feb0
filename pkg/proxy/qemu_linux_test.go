//go:build linux

package proxy

import (
	"testing"

	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// Clients passing descriptors at the same time each get their own file
// in QEMU: the proxy must not let a second request with descriptors reach
// QEMU before the first's reply (see qmptest.CheckAddFDConcurrently).
func TestSendFDConcurrent(t *testing.T) {
	sock := qmptest.StartQEMU(t)
	h := startProxy(t, sock, nil)
	var clients []qmptest.FileExecutor
	for range 4 {
		clients = append(clients, h.client())
	}
	qmptest.CheckAddFDConcurrently(t, ctxT(t), sock, clients, 15)
}
