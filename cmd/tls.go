package cmd

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/qmpsh/qmpsh/pkg/protocol"
)

// TLSOptions are the credentials for tls:HOST:PORT addresses, from the
// --tls-* flags, else the QMPSH_TLS_* environment variables.
type TLSOptions struct {
	Dir        string // QEMU's layout: ca-cert.pem, client-*.pem, server-*.pem
	CA         string
	Cert, Key  string
	ServerName string

	once sync.Once
	cfg  *tls.Config
	err  error
}

// tlsEnv names the environment variable behind each flag.
var tlsEnv = []struct{ flag, env string }{
	{"tls-dir", "QMPSH_TLS_DIR"},
	{"tls-ca", "QMPSH_TLS_CA"},
	{"tls-cert", "QMPSH_TLS_CERT"},
	{"tls-key", "QMPSH_TLS_KEY"},
	{"tls-server-name", "QMPSH_TLS_SERVER_NAME"},
}

func (o *TLSOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.Dir, "tls-dir", "", "TLS credentials in QEMU's layout in `DIR`: ca-cert.pem, client-cert.pem, client-key.pem (server-*.pem to listen) ($QMPSH_TLS_DIR)")
	f.StringVar(&o.CA, "tls-ca", "", "verify TLS peers against the CA certificates in `FILE` ($QMPSH_TLS_CA)")
	f.StringVar(&o.Cert, "tls-cert", "", "show the TLS certificate in `FILE` ($QMPSH_TLS_CERT)")
	f.StringVar(&o.Key, "tls-key", "", "the private key of --tls-cert, in `FILE` ($QMPSH_TLS_KEY)")
	f.StringVar(&o.ServerName, "tls-server-name", "", "expect QEMU's certificate to name `NAME` rather than the host dialled ($QMPSH_TLS_SERVER_NAME)")
}

func (o *TLSOptions) field(flag string) *string {
	switch flag {
	case "tls-dir":
		return &o.Dir
	case "tls-ca":
		return &o.CA
	case "tls-cert":
		return &o.Cert
	case "tls-key":
		return &o.Key
	}
	return &o.ServerName
}

// fromEnv fills the settings no flag gave from getenv.
func (o *TLSOptions) fromEnv(f *pflag.FlagSet, getenv func(string) string) {
	for _, e := range tlsEnv {
		if fl := f.Lookup(e.flag); fl != nil && fl.Changed {
			continue
		}
		if v := getenv(e.env); v != "" {
			*o.field(e.flag) = v
		}
	}
}

// config returns the TLS configuration for both roles, loaded once: as
// a client it verifies the server against the CA (the system's roots
// without one) and shows the client certificate; as a server (accept,
// the proxy's --listen) it shows the server certificate and requires a
// client certificate from the CA. nil when nothing is set: a tls:
// address then uses the system's roots and no client certificate.
func (o *TLSOptions) config() (*tls.Config, error) {
	o.once.Do(func() { o.cfg, o.err = o.load() })
	return o.cfg, o.err
}

func (o *TLSOptions) load() (*tls.Config, error) {
	if o.Dir == "" && o.CA == "" && o.Cert == "" && o.Key == "" && o.ServerName == "" {
		return nil, nil
	}
	if (o.Cert == "") != (o.Key == "") {
		return nil, usageErrorf("--tls-cert and --tls-key go together: give both or neither")
	}
	if o.Dir != "" {
		if fi, err := os.Stat(o.Dir); err != nil || !fi.IsDir() {
			return nil, usageErrorf("--tls-dir %s: not a directory", o.Dir)
		}
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.ServerName}
	ca := o.CA
	if ca == "" && o.Dir != "" {
		ca = filepath.Join(o.Dir, "ca-cert.pem")
	}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, usageErrorf("TLS CA: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageErrorf("TLS CA %s: no PEM certificate in it", ca)
		}
		cfg.RootCAs, cfg.ClientCAs = pool, pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	pair := func(cert, key string, optional bool) (*tls.Certificate, error) {
		if optional {
			if _, err := os.Stat(cert); errors.Is(err, os.ErrNotExist) {
				return nil, nil
			}
		}
		c, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, usageErrorf("TLS certificate %s: %v", cert, err)
		}
		return &c, nil
	}
	var client, server *tls.Certificate
	var err error
	switch {
	case o.Cert != "":
		if client, err = pair(o.Cert, o.Key, false); err != nil {
			return nil, err
		}
		server = client
	case o.Dir != "":
		// QEMU's own rules: the client's certificate is optional, the
		// server's is needed only to listen.
		if client, err = pair(filepath.Join(o.Dir, "client-cert.pem"), filepath.Join(o.Dir, "client-key.pem"), true); err != nil {
			return nil, err
		}
		if server, err = pair(filepath.Join(o.Dir, "server-cert.pem"), filepath.Join(o.Dir, "server-key.pem"), true); err != nil {
			return nil, err
		}
	}
	if server != nil {
		cfg.Certificates = []tls.Certificate{*server}
	}
	// The client's certificate is chosen apart from the server's, which
	// Certificates holds for listening.
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if client == nil {
			return &tls.Certificate{}, nil // none: the server decides
		}
		return client, nil
	}
	return cfg, nil
}

// checkListen says what listening on addr over TLS lacks: a certificate
// to show and a CA to verify clients against. Other addresses pass.
func (o *TLSOptions) checkListen(addr string) error {
	a, err := protocol.ParseAddress(addr)
	if err != nil || !a.TLS {
		return nil
	}
	cfg, err := o.config()
	if err != nil {
		return err
	}
	if cfg == nil || len(cfg.Certificates) == 0 {
		return usageErrorf("listening on %s needs a server certificate: --tls-dir DIR with server-cert.pem and server-key.pem, or --tls-cert and --tls-key", addr)
	}
	if cfg.ClientCAs == nil {
		return usageErrorf("listening on %s needs a CA to verify clients against: --tls-ca FILE, or --tls-dir DIR with ca-cert.pem", addr)
	}
	return nil
}

// qemuDialArgs is the QEMU command line that dials bound, a listening
// address: -qmp for UNIX and TCP; for TLS a client-mode chardev with
// tls-creds from dir (the --tls-dir given, else a placeholder). QEMU
// checks our certificate against the host it dials, so for a TLS listener
// on every address (0.0.0.0, ::) the host is a name the certificate cfg
// shows carries, else HOST for the user to fill in.
func qemuDialArgs(bound, dir string, cfg *tls.Config) string {
	a, err := protocol.ParseAddress(bound)
	if err == nil && a.Network == "unix" {
		// QEMU may run elsewhere: an absolute path; and in its option
		// syntax a comma is doubled.
		if abs, err := filepath.Abs(a.Addr); err == nil {
			return "-qmp unix:" + strings.ReplaceAll(abs, ",", ",,")
		}
	}
	if err != nil || !a.TLS {
		return "-qmp " + bound
	}
	host, port, err := net.SplitHostPort(a.Addr)
	if err != nil {
		return "-qmp " + bound
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if host = certHost(cfg); host == "" {
			host = "HOST"
		}
	}
	if dir == "" {
		dir = "DIR"
	} else if abs, err := filepath.Abs(dir); err == nil {
		dir = abs // QEMU need not start where we did
	}
	return fmt.Sprintf("-object tls-creds-x509,id=tls0,dir=%s,endpoint=client -chardev socket,id=mon,host=%s,port=%s,tls-creds=tls0 -mon chardev=mon,mode=control",
		strings.ReplaceAll(dir, ",", ",,"), host, port)
}

// acceptTLS is the TLS configuration accept serves QEMU with: cfg with
// TLS 1.2 at most. QEMU's TLS client (GnuTLS; seen with QEMU 7.2 and
// GnuTLS 3.7 on Debian 12) sends no RSA client certificate in a TLS 1.3
// handshake with Go's server, which then refuses it for want of one;
// over TLS 1.2 it sends it. RSA is what QEMU's documentation makes with
// certtool. ECDSA certificates would do with TLS 1.3, but accept cannot
// know QEMU's key before the handshake. Dialling QEMU keeps TLS 1.3.
func acceptTLS(cfg *tls.Config) *tls.Config {
	c := cfg.Clone()
	c.MaxVersion = tls.VersionTLS12
	return c
}

// certHost is a name the certificate cfg shows carries: its first DNS
// name that is not a wildcard, else its first IP address; "" if none.
func certHost(cfg *tls.Config) string {
	if cfg == nil || len(cfg.Certificates) == 0 || len(cfg.Certificates[0].Certificate) == 0 {
		return ""
	}
	leaf := cfg.Certificates[0].Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cfg.Certificates[0].Certificate[0]); err != nil {
			return ""
		}
	}
	for _, name := range leaf.DNSNames {
		if !strings.Contains(name, "*") { // a wildcard is no host to dial
			return name
		}
	}
	if len(leaf.IPAddresses) > 0 {
		return leaf.IPAddresses[0].String()
	}
	return ""
}

// tlsRefusedHint is why a TLS server may hang up before greeting: with
// TLS 1.3 the client's handshake is done before the server has checked
// the client's certificate, so a refusal shows only as the server
// closing the connection.
const tlsRefusedHint = "the server may have refused our TLS certificate (QEMU's verify-peer=on wants one from its CA): " +
	"give --tls-dir with client-cert.pem and client-key.pem, or --tls-cert and --tls-key"

func isTLSAddress(addr string) bool {
	a, err := protocol.ParseAddress(addr)
	return err == nil && a.TLS
}

// tlsHint says what to do about a failed TLS handshake, after crypto/tls
// has said what did not match; "" for other errors.
func tlsHint(err error) string {
	var te *protocol.TLSError
	if !errors.As(err, &te) {
		return ""
	}
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	var rh tls.RecordHeaderError
	switch {
	case errors.As(err, &rh):
		// A plain QMP monitor's first bytes are its greeting.
		return "; the server does not speak TLS: dial a plain monitor as tcp:HOST:PORT"
	case errors.As(err, &ua):
		return "; give the CA that signed QEMU's certificate: --tls-ca FILE, or --tls-dir DIR with ca-cert.pem"
	case errors.As(err, &he):
		return "; dial a name the certificate holds, or say which one to expect with --tls-server-name"
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		return "; renew the certificate (or check this machine's clock)"
	}
	return ""
}

// checkTLSFlags refuses --tls-* flags on a command none of whose
// addresses is tls:HOST:PORT: TLS is asked for by the address alone, and
// "--tls-dir D -s host:4444" would otherwise dial plain TCP to a TLS
// monitor and wait for a greeting that never comes. The QMPSH_TLS_*
// variables are not checked: set once for a session, they serve the
// commands that use them.
func (o *TLSOptions) checkTLSFlags(c *cobra.Command, args []string, getenv func(string) string) error {
	var given string
	for _, e := range tlsEnv {
		if fl := c.Flags().Lookup(e.flag); fl != nil && fl.Changed {
			given = "--" + e.flag
			break
		}
	}
	if given == "" {
		return nil
	}
	var addrs []string
	for _, name := range []string{"socket", "listen"} {
		fl := c.Flags().Lookup(name)
		if fl == nil {
			continue
		}
		for _, v := range flagValues(fl) {
			if v != "" {
				addrs = append(addrs, v)
			}
		}
	}
	switch c.Name() {
	case "connect", "accept":
		addrs = append(addrs, args...)
	}
	if len(addrs) == 0 || (c.Name() == "proxy" && c.Flags().Lookup("socket").Value.String() == "") {
		// The variable the command falls back on: the guest agent's
		// commands have their own.
		envName := "QMP_SOCKET"
		if c.HasParent() && c.Parent().Name() == "ga" {
			envName = "QGA_SOCKET"
		}
		if env := getenv(envName); env != "" {
			addrs = append(addrs, env)
		}
	}
	for _, a := range addrs {
		if isTLSAddress(a) {
			return nil
		}
	}
	if len(addrs) == 0 {
		return nil // the command says that it needs an address
	}
	return usageErrorf("%s is for tls:HOST:PORT addresses, and %s is not one: write tls:HOST:PORT to use TLS", given, addrs[0])
}
