package qmptest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TLSDirConfig says what WriteTLSDir puts in the server's certificate.
type TLSDirConfig struct {
	// Hosts are the names and IP addresses the server certificate is
	// valid for. Default: 127.0.0.1, ::1 and localhost.
	Hosts []string
	// Expired makes the server certificate one that expired yesterday.
	Expired bool
	// RSA makes every key RSA (2048 bits), as QEMU's documentation makes
	// them with certtool, instead of ECDSA P-256.
	RSA bool
}

// NewTLSDir makes a throwaway CA, a server and a client certificate
// signed by it, and writes them in a new temporary directory in the
// layout of QEMU's tls-creds-x509 (ca-cert.pem, server-cert.pem,
// server-key.pem, client-cert.pem, client-key.pem), which serves QEMU's
// endpoint=server and endpoint=client alike, and qmpsh's --tls-dir. Each
// call makes a new CA, so two directories do not trust each other.
func NewTLSDir(t testing.TB) string {
	t.Helper()
	return NewTLSDirWith(t, TLSDirConfig{})
}

// NewTLSDirWith is NewTLSDir with the server certificate as c says.
func NewTLSDirWith(t testing.TB, c TLSDirConfig) string {
	t.Helper()
	dir := t.TempDir()
	if err := WriteTLSDir(dir, c); err != nil {
		t.Fatalf("qmptest: %v", err)
	}
	return dir
}

// WriteTLSDir writes a new CA and its server and client certificates
// into dir, as NewTLSDir does. Keys are ECDSA P-256, which QEMU's gnutls
// and crypto/tls both take, and fast to make.
func WriteTLSDir(dir string, c TLSDirConfig) error {
	hosts := c.Hosts
	if len(hosts) == 0 {
		hosts = []string{"127.0.0.1", "::1", "localhost"}
	}
	now := time.Now()
	newKey := func() (crypto.Signer, error) {
		if c.RSA {
			return rsa.GenerateKey(rand.Reader, 2048)
		}
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	caKey, err := newKey()
	if err != nil {
		return err
	}
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "qmptest CA " + dir},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, caKey.Public(), caKey)
	if err != nil {
		return fmt.Errorf("making the CA: %w", err)
	}
	if ca, err = x509.ParseCertificate(caDER); err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, "ca-cert.pem"), "CERTIFICATE", caDER); err != nil {
		return err
	}

	leaf := func(serial int64, name string, usage x509.ExtKeyUsage, certFile, keyFile string, expired bool) error {
		key, err := newKey()
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(serial),
			Subject:               pkix.Name{CommonName: name},
			NotBefore:             now.Add(-time.Hour),
			NotAfter:              now.Add(24 * time.Hour),
			BasicConstraintsValid: true,
			// QEMU's sanity check wants both usages on a leaf.
			KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		if expired {
			tmpl.NotBefore, tmpl.NotAfter = now.Add(-48*time.Hour), now.Add(-24*time.Hour)
		}
		if usage == x509.ExtKeyUsageServerAuth {
			for _, h := range hosts {
				if ip := net.ParseIP(h); ip != nil {
					tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
				} else {
					tmpl.DNSNames = append(tmpl.DNSNames, h)
				}
			}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
		if err != nil {
			return fmt.Errorf("making %s: %w", certFile, err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return err
		}
		if err := writePEM(filepath.Join(dir, certFile), "CERTIFICATE", der); err != nil {
			return err
		}
		return writePEM(filepath.Join(dir, keyFile), "PRIVATE KEY", keyDER)
	}
	if err := leaf(2, hosts[0], x509.ExtKeyUsageServerAuth, "server-cert.pem", "server-key.pem", c.Expired); err != nil {
		return err
	}
	return leaf(3, "qmptest client", x509.ExtKeyUsageClientAuth, "client-cert.pem", "client-key.pem", false)
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

// StartQEMUTLS starts qemu-system-x86_64 as StartQEMU does, but with its
// QMP monitor on a loopback TCP port behind TLS: tls-creds-x509 from dir
// (QEMU's layout; see NewTLSDir) with endpoint=server and verify-peer=on,
// so a client must show a certificate from dir's CA. It returns the
// monitor's address as "tls:127.0.0.1:PORT".
func StartQEMUTLS(t testing.TB, dir string, extraArgs ...string) string {
	t.Helper()
	bin := RequireQEMU(t, "qemu-system-x86_64")
	p, addr, err := LaunchQEMUTLS(bin, dir, extraArgs...)
	if err != nil {
		t.Fatalf("qmptest: %v", err)
	}
	stopAtEnd(t, p)
	return addr
}

// LaunchQEMUTLS is the launcher behind StartQEMUTLS. The port is one the
// kernel picked for a socket we listen on and hand to QEMU, as
// LaunchQEMU does with a UNIX socket, so no other process can take it
// between choosing and listening.
func LaunchQEMUTLS(bin, dir string, extraArgs ...string) (*Process, string, error) {
	cfg, err := ClientTLSConfig(dir)
	if err != nil {
		return nil, "", err
	}
	cfg.ServerName = "127.0.0.1"
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, "", fmt.Errorf("listen: %w", err)
	}
	hostPort := ln.Addr().String()
	args := append([]string{"-object", "tls-creds-x509,id=qmptesttls,endpoint=server,verify-peer=on,dir=" + qemuOpt(dir)},
		qemuArgs(",tls-creds=qmptesttls", extraArgs)...)
	p, err := launchOn(bin, ln, args, func() (net.Conn, error) {
		c, err := net.DialTimeout("tcp", hostPort, startTimeout)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(c, cfg)
		tc.SetDeadline(time.Now().Add(startTimeout))
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, err
		}
		return byteRecords{tc}, nil
	})
	if err != nil {
		return nil, "", err
	}
	return p, "tls:" + hostPort, nil
}

// StartQEMUTCP starts qemu-system-x86_64 as StartQEMU does, but with its
// QMP monitor on a loopback TCP port without TLS, and returns the
// monitor's address as "tcp:127.0.0.1:PORT": a plain monitor, for
// clients that dial it as a TLS one by mistake.
func StartQEMUTCP(t testing.TB, extraArgs ...string) string {
	t.Helper()
	bin := RequireQEMU(t, "qemu-system-x86_64")
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("qmptest: listen: %v", err)
	}
	hostPort := ln.Addr().String()
	p, err := launchOn(bin, ln, qemuArgs("", extraArgs), func() (net.Conn, error) {
		return net.DialTimeout("tcp", hostPort, startTimeout)
	})
	if err != nil {
		t.Fatalf("qmptest: %v", err)
	}
	stopAtEnd(t, p)
	return "tcp:" + hostPort
}

// StartQEMUClientTLS is StartQEMUClient over TLS: QEMU's client-mode
// monitor dials hostPort (the caller listens there already) with
// tls-creds-x509 from dir, endpoint=client, so it verifies the
// listener's certificate against dir's CA and the host's name, and shows
// dir's client certificate.
func StartQEMUClientTLS(t testing.TB, hostPort, dir string, extraArgs ...string) *exec.Cmd {
	t.Helper()
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		t.Fatalf("qmptest: %v", err)
	}
	args := []string{
		"-object", "tls-creds-x509,id=qmptesttls,endpoint=client,dir=" + qemuOpt(dir),
		"-chardev", "socket,id=qmptest,host=" + host + ",port=" + port + ",tls-creds=qmptesttls",
		"-mon", "chardev=qmptest,mode=control",
	}
	return startClient(t, append(args, extraArgs...))
}

// ClientTLSConfig is a client's TLS configuration from dir in QEMU's
// layout: dir's CA, and its client certificate.
func ClientTLSConfig(dir string) (*tls.Config, error) {
	ca, err := os.ReadFile(filepath.Join(dir, "ca-cert.pem"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("%s/ca-cert.pem: no certificate", dir)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "client-cert.pem"), filepath.Join(dir, "client-key.pem"))
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}, nil
}

// ServerTLSConfig is a server's TLS configuration from dir in QEMU's
// layout: its server certificate, asking nothing of clients (add ClientCAs
// and ClientAuth to verify theirs).
func ServerTLSConfig(dir string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "server-cert.pem"), filepath.Join(dir, "server-key.pem"))
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}}, nil
}

// ListenTLS listens on a free loopback TCP port with ServerTLSConfig(dir),
// for a Go server in place of QEMU where a test needs what QEMU will not
// do; the listener is closed when the test ends.
func ListenTLS(t testing.TB, dir string) net.Listener {
	t.Helper()
	cfg, err := ServerTLSConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// qemuOpt doubles the commas in an option value, which QEMU's option
// parser would take for separators.
func qemuOpt(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// byteRecords writes each byte in a TLS record of its own, as QEMU 7.2's
// TLS monitor needs (see protocol's byteRecordConn).
type byteRecords struct{ *tls.Conn }

func (c byteRecords) Write(p []byte) (int, error) {
	for i := range p {
		if _, err := c.Conn.Write(p[i : i+1]); err != nil {
			return i, err
		}
	}
	return len(p), nil
}
