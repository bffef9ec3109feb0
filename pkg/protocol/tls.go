package protocol

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
)

// TLS is only ever asked for by the address ("tls:HOST:PORT"), and a
// handshake that fails ends the attempt: there is no fallback to plain
// TCP, which would hand the monitor to whoever sits in between.

// clientHandshake runs TLS over conn, dialled to a, and returns the TLS
// connection once the server's certificate has been verified. cfg nil
// means the system's roots and no client certificate. Without a
// ServerName in cfg the certificate must name a's host. conn is closed
// on failure.
func clientHandshake(ctx context.Context, conn net.Conn, a Address, cfg *tls.Config) (net.Conn, error) {
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
		host, _, err := net.SplitHostPort(a.Addr)
		if err != nil {
			conn.Close()
			return nil, err
		}
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	g := &gatherConn{Conn: conn}
	tc := tls.Client(g, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, &TLSError{Addr: a.String(), Err: err}
	}
	return &byteRecordConn{Conn: tc, raw: g}, nil
}

// serverHandshake runs TLS as the server over conn, which a peer dialled.
func serverHandshake(ctx context.Context, conn net.Conn, cfg *tls.Config) (net.Conn, error) {
	g := &gatherConn{Conn: conn}
	tc := tls.Server(g, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		peer := ""
		if ra := conn.RemoteAddr(); ra != nil {
			peer = ra.String()
		}
		return nil, &TLSError{Addr: peer, Server: true, Err: err}
	}
	return &byteRecordConn{Conn: tc, raw: g}, nil
}

// byteRecordConn sends every byte in a TLS record of its own, because
// QEMU before 8.2 reads a TLS monitor that way: its QMP monitor asks its
// channel for one byte at a time, gnutls decrypts a whole record and
// keeps the rest, and QEMU waits for the socket to become readable again
// before asking for the next byte (fixed in QEMU 8.2 by "io/channel-tls:
// fix handling of bigger read buffers"). A command in one record would
// sit half-read until the next one came. Seen with QEMU 7.2: the
// greeting arrives, qmp_capabilities gets no reply.
//
// The records of one Write are gathered and written to the socket
// together, so the cost is bytes on the wire (about 23 per byte sent),
// not a system call per byte. Replies and events, which QEMU sends, are
// read as usual.
//
// Like *tls.Conn it has no SyscallConn, and must not get one: the
// session writes straight to the descriptor of a connection that has
// one, which here would put plaintext on the wire.
type byteRecordConn struct {
	*tls.Conn
	raw *gatherConn
	wmu sync.Mutex // one Write's records stay together
}

// gatherFlush bounds what one Write gathers before writing to the socket.
const gatherFlush = 64 << 10

func (c *byteRecordConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.raw.gather(true)
	n := 0
	var err error
	for n < len(p) {
		if _, err = c.Conn.Write(p[n : n+1]); err != nil {
			break
		}
		n++
		if c.raw.buffered() >= gatherFlush {
			if err = c.raw.flush(); err != nil {
				break
			}
		}
	}
	c.raw.gather(false)
	if ferr := c.raw.flush(); err == nil {
		err = ferr
	}
	return n, err
}

// gatherConn is the socket under a byteRecordConn's tls.Conn: while
// gathering, what the tls.Conn writes (its records) is kept until flush.
type gatherConn struct {
	net.Conn
	mu        sync.Mutex
	gathering bool
	buf       []byte
	err       error // the first failed write: later records must not follow a gap
}

func (g *gatherConn) gather(on bool) {
	g.mu.Lock()
	g.gathering = on
	g.mu.Unlock()
}

func (g *gatherConn) buffered() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.buf)
}

func (g *gatherConn) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return 0, g.err
	}
	if g.gathering {
		g.buf = append(g.buf, p...)
		return len(p), nil
	}
	if len(g.buf) > 0 { // records gathered before must go first
		if err := g.flushLocked(); err != nil {
			return 0, err
		}
	}
	n, err := g.Conn.Write(p)
	if err != nil {
		g.err = err
	}
	return n, err
}

func (g *gatherConn) flush() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.flushLocked()
}

func (g *gatherConn) flushLocked() error {
	if g.err != nil {
		return g.err
	}
	if len(g.buf) == 0 {
		return nil
	}
	_, err := g.Conn.Write(g.buf)
	if err != nil {
		g.err = err
	}
	if cap(g.buf) > 2*gatherFlush {
		g.buf = nil
	} else {
		g.buf = g.buf[:0]
	}
	return err
}

// checkServerTLS says what a listener on a "tls:" address lacks before
// anyone dials it.
func checkServerTLS(cfg *tls.Config) error {
	if cfg == nil || (len(cfg.Certificates) == 0 && cfg.GetCertificate == nil && cfg.GetConfigForClient == nil) {
		return errors.New("listening over TLS needs a server certificate and key")
	}
	return nil
}

// ListenTLS is Listen for "tls:HOST:PORT": every connection accepted is
// a TLS server connection on cfg, whose handshake runs on its first Read
// or Write (or an explicit Handshake). For other addresses cfg is
// ignored.
func ListenTLS(ctx context.Context, a Address, cfg *tls.Config) (net.Listener, error) {
	if a.TLS {
		if err := checkServerTLS(cfg); err != nil {
			return nil, err
		}
	}
	ln, err := Listen(ctx, a)
	if err != nil || !a.TLS {
		return ln, err
	}
	return tls.NewListener(ln, cfg), nil
}

// TLSError is a failed TLS handshake: the peer's certificate did not
// verify (unknown authority, another host's name, expired), ours was
// refused, or the peer does not speak TLS. Err is crypto/tls's error,
// which names what did not match; errors.As finds the
// *tls.CertificateVerificationError, x509.UnknownAuthorityError,
// x509.HostnameError or x509.CertificateInvalidError in it.
type TLSError struct {
	Addr   string // the address dialled, or the peer's when Server
	Server bool   // the handshake was as the server, on Accept
	Err    error
}

func (e *TLSError) Error() string {
	if e.Server {
		if e.Addr != "" {
			return fmt.Sprintf("TLS handshake with %s failed: %v", e.Addr, e.Err)
		}
		return fmt.Sprintf("TLS handshake failed: %v", e.Err)
	}
	return fmt.Sprintf("TLS handshake failed: %v", e.Err)
}

func (e *TLSError) Unwrap() error { return e.Err }
