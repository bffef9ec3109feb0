package protocol

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
)

// Address is a parsed endpoint: Network is "unix" or "tcp".
type Address struct {
	Network string
	Addr    string // socket path or host:port
	// TLS is set for "tls:HOST:PORT": TCP with TLS on top, never plain.
	TLS bool
}

// String returns the address with its explicit prefix, "unix:PATH",
// "tcp:HOST:PORT" or "tls:HOST:PORT", which ParseAddress reads back
// unchanged.
func (a Address) String() string {
	if a.TLS {
		return "tls:" + a.Addr
	}
	return a.Network + ":" + a.Addr
}

// ParseAddress tells a UNIX socket path from a TCP address.
//
// An explicit prefix decides: "unix:PATH" or "tcp:HOST:PORT". Without one,
// a string containing '/' is a path; otherwise a string that splits as
// host:port with a numeric port ("localhost:4444", "[::1]:4444", ":4444")
// is TCP; anything else ("qmp.sock") is a path relative to the working
// directory. Use "unix:" for a relative path that looks like host:port.
// "tls:HOST:PORT" is TCP with TLS: only that prefix turns TLS on.
func ParseAddress(s string) (Address, error) {
	switch {
	case strings.HasPrefix(s, "tls:"):
		hp := strings.TrimPrefix(s, "tls:")
		if _, port, err := net.SplitHostPort(hp); err != nil || !isPort(port) {
			return Address{}, fmt.Errorf("address %q: expected tls:HOST:PORT", s)
		}
		return Address{Network: "tcp", Addr: hp, TLS: true}, nil
	case strings.HasPrefix(s, "unix:"):
		p := strings.TrimPrefix(s, "unix:")
		if p == "" {
			return Address{}, fmt.Errorf("address %q: empty socket path", s)
		}
		return Address{Network: "unix", Addr: p}, nil
	case strings.HasPrefix(s, "tcp:"):
		hp := strings.TrimPrefix(s, "tcp:")
		if _, port, err := net.SplitHostPort(hp); err != nil || !isPort(port) {
			return Address{}, fmt.Errorf("address %q: expected tcp:HOST:PORT", s)
		}
		return Address{Network: "tcp", Addr: hp}, nil
	case s == "":
		return Address{}, errors.New("empty address")
	case strings.Contains(s, "/"):
		return Address{Network: "unix", Addr: s}, nil
	}
	if _, port, err := net.SplitHostPort(s); err == nil {
		if isPort(port) {
			return Address{Network: "tcp", Addr: s}, nil
		}
		if digits(port) {
			// "localhost:99999" is a mistyped port, not a file name.
			return Address{}, fmt.Errorf("address %q: port %s out of range", s, port)
		}
	}
	return Address{Network: "unix", Addr: s}, nil
}

func digits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// isPort says whether s is a TCP port number, 0 to 65535.
func isPort(s string) bool {
	if s == "" || len(s) > 5 {
		return false
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}

// listenOnce listens on a, accepts exactly one connection, and stops
// listening. A UNIX socket it created is removed as soon as the peer is
// accepted (or the attempt ends), since nobody else may connect to it.
func listenOnce(ctx context.Context, a Address, cfg *tls.Config, listening func(string)) (net.Conn, error) {
	if a.TLS {
		if err := checkServerTLS(cfg); err != nil {
			return nil, err
		}
	}
	var ln net.Listener
	var err error
	if a.Network == "unix" {
		ln, err = listenUnixPrivate(a.Addr)
	} else {
		var lc net.ListenConfig
		ln, err = lc.Listen(ctx, "tcp", a.Addr)
	}
	if err != nil {
		return nil, err
	}
	if listening != nil {
		bound := a
		if a.Network == "tcp" {
			bound.Addr = ln.Addr().String() // resolves port 0
		}
		listening(bound.String())
	}
	// Closing the listener is how a blocked Accept is interrupted.
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	conn, err := ln.Accept()
	stop()
	ln.Close()
	if a.Network == "unix" {
		os.Remove(a.Addr)
	}
	if err != nil {
		return nil, err
	}
	if a.TLS {
		return serverHandshake(ctx, conn, cfg)
	}
	return conn, nil
}

// Listen listens on a for any number of peers, as a server does: a UNIX
// socket is made as Accept makes it (mode 0600 whatever the umask, never
// replacing a file that is not a socket or a socket something listens on)
// but with a full backlog, and is not removed when the listener is
// closed: the caller removes a.Addr, once, when it stops serving.
func Listen(ctx context.Context, a Address) (net.Listener, error) {
	if a.Network == "unix" {
		return listenUnix(a.Addr, syscall.SOMAXCONN)
	}
	var lc net.ListenConfig
	return lc.Listen(ctx, "tcp", a.Addr)
}

// listenUnixPrivate binds a UNIX socket that only the owner can connect
// to, whatever the umask. The mode is set between bind and listen, so
// there is no moment when another user's connect could succeed: until
// listen, every connect is refused.
func listenUnixPrivate(path string) (net.Listener, error) { return listenUnix(path, 1) }

func listenUnix(path string, backlog int) (net.Listener, error) {
	opErr := func(err error) error {
		return &net.OpError{Op: "listen", Net: "unix", Addr: &net.UnixAddr{Name: path, Net: "unix"}, Err: err}
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, opErr(&SocketPathError{Path: path})
		}
		// A socket something listens on is not ours to take over: it may
		// be a running QEMU's own monitor, cut off if replaced.
		if listened(path) {
			return nil, opErr(&SocketPathError{Path: path, Listening: true})
		}
		// A stale socket (from an earlier run) is replaced, as QEMU does.
		if err := os.Remove(path); err != nil {
			return nil, opErr(err)
		}
	}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, opErr(os.NewSyscallError("socket", err))
	}
	f := os.NewFile(uintptr(fd), path) // owns fd from here on
	defer f.Close()                    // FileListener below holds a dup
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		return nil, opErr(os.NewSyscallError("bind", err))
	}
	if err := os.Chmod(path, 0o600); err != nil {
		os.Remove(path)
		return nil, opErr(err)
	}
	if err := syscall.Listen(fd, backlog); err != nil {
		os.Remove(path)
		return nil, opErr(os.NewSyscallError("listen", err))
	}
	ln, err := net.FileListener(f)
	if err != nil {
		os.Remove(path)
		return nil, opErr(err)
	}
	// Go must not unlink on Close: listenOnce does that itself, once.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	return ln, nil
}

// Probe is the line listened sends before it hangs up. A qmpsh waiting
// there for QEMU (accept, wrap) reads it where QEMU's greeting would be,
// and so knows to wait on; to QEMU's own monitor, or a proxy, it is one
// more client's malformed request.
var Probe = []byte(`{"qmpsh": "probe"}`)

// listened reports whether something listens on the UNIX socket at path.
// Connecting is the only way to know; a connect to a UNIX socket never
// blocks. A full backlog (EAGAIN) means a listener too; only "refused"
// (nobody listens) or a path gone meanwhile mean none.
func listened(path string) bool {
	c, err := net.Dial("unix", path)
	if err == nil {
		// It does not block either: the socket's buffer takes it.
		c.Write(append(Probe, '\n'))
		c.Close()
		return true
	}
	return !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, os.ErrNotExist)
}
