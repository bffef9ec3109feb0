package qmp_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qmpsh/qmpsh/pkg/protocol"
	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

func clientTLS(t *testing.T, dir string) *tls.Config {
	t.Helper()
	cfg, err := qmptest.ClientTLSConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A monitor behind QEMU's tls-creds-x509 with verify-peer=on answers a
// client whose certificate is from the same CA, and commands of any
// length get through (QEMU 7.2 reads a TLS monitor one record per byte).
func TestQEMUTLS(t *testing.T) {
	dir := qmptest.NewTLSDir(t)
	addr := qmptest.StartQEMUTLS(t, dir)
	if !strings.HasPrefix(addr, "tls:127.0.0.1:") {
		t.Fatalf("address %q", addr)
	}
	c := connect(t, addr, qmp.WithTLS(clientTLS(t, dir)))
	ctx := testContext(t)
	ret, err := c.Execute(ctx, "query-status", nil)
	if err != nil {
		t.Fatal(err)
	}
	var st struct{ Status string }
	if err := json.Unmarshal(ret, &st); err != nil || st.Status != "running" {
		t.Fatalf("query-status = %s (%v)", ret, err)
	}
	// A long argument spans many of QEMU's reads.
	long := strings.Repeat("x", 20000)
	ret, err = c.Execute(ctx, "qom-list", map[string]string{"path": "/" + long})
	var ee *qmp.ExecuteError
	if !errors.As(err, &ee) || !strings.Contains(ee.Desc, long) {
		t.Fatalf("qom-list on a long path = %s, %v; want QEMU's error naming the path", ret, err)
	}
}

// The verification failures name what did not match.
func TestQEMUTLSRefused(t *testing.T) {
	dir := qmptest.NewTLSDir(t)
	addr := qmptest.StartQEMUTLS(t, dir)
	ctx := testContext(t)

	t.Run("UnknownAuthority", func(t *testing.T) {
		other := qmptest.NewTLSDir(t)
		c := qmp.NewClient(qmp.WithTLS(clientTLS(t, other)))
		err := c.Connect(ctx, addr)
		var ua x509.UnknownAuthorityError
		var te *protocol.TLSError
		var ce *protocol.ConnectError
		if !errors.As(err, &ua) || !errors.As(err, &te) || !errors.As(err, &ce) {
			t.Fatalf("Connect with another CA = %v (%T), want a ConnectError with x509.UnknownAuthorityError", err, err)
		}
		if !strings.Contains(err.Error(), "unknown authority") {
			t.Errorf("message %q does not say unknown authority", err)
		}
	})
	t.Run("WrongName", func(t *testing.T) {
		cfg := clientTLS(t, dir)
		cfg.ServerName = "vm7.example.org"
		err := qmp.NewClient(qmp.WithTLS(cfg)).Connect(ctx, addr)
		var he x509.HostnameError
		if !errors.As(err, &he) || !strings.Contains(err.Error(), "vm7.example.org") {
			t.Fatalf("Connect as vm7.example.org = %v, want an x509.HostnameError naming it", err)
		}
	})
	t.Run("NoClientCertificate", func(t *testing.T) {
		cfg := clientTLS(t, dir)
		cfg.Certificates = nil
		c := qmp.NewClient(qmp.WithTLS(cfg))
		err := c.Connect(ctx, addr)
		if err == nil {
			c.Disconnect()
			t.Fatal("QEMU with verify-peer=on accepted a client without a certificate")
		}
		t.Logf("refused: %v", err)
	})
	// The monitor still serves a good client after all that.
	c := connect(t, addr, qmp.WithTLS(clientTLS(t, dir)))
	if _, err := c.Execute(ctx, "query-status", nil); err != nil {
		t.Fatal(err)
	}
}

// Accept on a tls: address serves QEMU's client-mode monitor, which
// verifies our certificate against its CA and shows its own.
func TestQEMUAcceptTLS(t *testing.T) {
	qmptest.RequireQEMU(t, "qemu-system-x86_64")
	dir := qmptest.NewTLSDir(t)
	cfg := serverTLS(t, dir)
	listening := make(chan string, 1)
	c := qmp.NewClient(qmp.WithTLS(cfg), qmp.WithListening(func(addr string) { listening <- addr }))
	ctx := testContext(t)
	result := make(chan error, 1)
	go func() { result <- c.Accept(ctx, "tls:127.0.0.1:0") }()
	addr := <-listening
	if !strings.HasPrefix(addr, "tls:127.0.0.1:") {
		t.Fatalf("listening on %q", addr)
	}
	qmptest.StartQEMUClientTLS(t, strings.TrimPrefix(addr, "tls:"), dir)
	if err := <-result; err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	if _, err := c.Execute(ctx, "query-status", nil); err != nil {
		t.Fatal(err)
	}
}

func serverTLS(t *testing.T, dir string) *tls.Config {
	t.Helper()
	cfg, err := qmptest.ServerTLSConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ClientCAs, cfg.ClientAuth = clientTLS(t, dir).RootCAs, tls.RequireAndVerifyClientCert
	return cfg
}

// BenchmarkExecuteTLS measures query-status over QEMU's TLS monitor,
// whose every byte sent goes in a record of its own (see
// protocol.byteRecordConn), against the same QEMU's UNIX monitor.
func BenchmarkExecuteTLS(b *testing.B) {
	dir := b.TempDir()
	if err := qmptest.WriteTLSDir(dir, qmptest.TLSDirConfig{}); err != nil {
		b.Fatal(err)
	}
	sock := filepath.Join(b.TempDir(), "u.sock")
	addr := qmptest.StartQEMUTLS(b, dir, "-qmp", "unix:"+sock+",server=on,wait=off")
	cfg, err := qmptest.ClientTLSConfig(dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name, addr string
		opts       []qmp.Option
	}{{"tls", addr, []qmp.Option{qmp.WithTLS(cfg)}}, {"unix", sock, nil}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c := qmp.NewClient(tc.opts...)
			if err := c.Connect(ctx, tc.addr); err != nil {
				b.Fatal(err)
			}
			defer c.Disconnect()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Execute(ctx, "query-status", nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
