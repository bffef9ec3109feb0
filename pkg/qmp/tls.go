package qmp

import "crypto/tls"

// WithTLS has Connect and Accept use cfg for "tls:HOST:PORT" addresses:
// its RootCAs (nil: the system's) verify QEMU's certificate, which must
// name the host dialled unless cfg.ServerName says another name; its
// client certificate (Certificates or GetClientCertificate) is what
// QEMU's verify-peer=on checks. Accept on a "tls:" address serves cfg's
// Certificates and checks the peer as cfg.ClientAuth says. Other
// addresses never use TLS, and a "tls:" address never falls back to
// plain TCP. Without this option a "tls:" address is dialled with the
// system's roots and no client certificate.
//
// ConnectConn takes a connection already made, so a *tls.Conn from
// tls.Dial works there too.
func WithTLS(cfg *tls.Config) Option { return func(c *config) { c.tls = cfg } }
