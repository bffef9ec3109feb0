package ga

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// CheckVsockAddress returns the error of a vsock: address that is not
// vsock:CID:PORT; any other address passes.
func CheckVsockAddress(addr string) error {
	rest, ok := strings.CutPrefix(addr, "vsock:")
	if !ok {
		return nil
	}
	_, _, err := parseVsock(rest)
	return err
}

// parseVsock parses "CID:PORT", the part after "vsock:".
func parseVsock(s string) (cid, port uint32, err error) {
	c, p, ok := strings.Cut(s, ":")
	if ok {
		var cerr, perr error
		var c64, p64 uint64
		c64, cerr = strconv.ParseUint(c, 10, 32)
		p64, perr = strconv.ParseUint(p, 10, 32)
		if cerr == nil && perr == nil {
			return uint32(c64), uint32(p64), nil
		}
	}
	return 0, 0, fmt.Errorf("bad vsock address %q: want vsock:CID:PORT, e.g. vsock:3:1234", "vsock:"+s)
}

// vsockAddr is a vsock endpoint, as net.Addr.
type vsockAddr struct{ cid, port uint32 }

func (a vsockAddr) Network() string { return "vsock" }
func (a vsockAddr) String() string  { return fmt.Sprintf("%d:%d", a.cid, a.port) }

// vsockConn is a connected AF_VSOCK socket. The net package knows no
// vsock addresses, so the socket is an *os.File, which gives it the
// runtime poller (deadlines, non-blocking I/O) all the same.
type vsockConn struct {
	*os.File
	local, remote vsockAddr
}

func (c *vsockConn) LocalAddr() net.Addr  { return c.local }
func (c *vsockConn) RemoteAddr() net.Addr { return c.remote }

// dialVsock connects to cid:port, a non-blocking connect that ctx bounds.
func dialVsock(ctx context.Context, cid, port uint32) (net.Conn, error) {
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("vsock socket: %w", err)
	}
	err = unix.Connect(fd, &unix.SockaddrVM{CID: cid, Port: port})
	if err != nil && !errors.Is(err, unix.EINPROGRESS) {
		unix.Close(fd)
		return nil, os.NewSyscallError("connect", err)
	}
	f := os.NewFile(uintptr(fd), fmt.Sprintf("vsock:%d:%d", cid, port))
	if err != nil { // in progress: wait until writable, then ask how it went
		if dl, ok := ctx.Deadline(); ok {
			f.SetWriteDeadline(dl)
		}
		stop := context.AfterFunc(ctx, func() { f.SetWriteDeadline(time.Unix(1, 0)) })
		rc, rerr := f.SyscallConn()
		if rerr != nil {
			stop()
			f.Close()
			return nil, rerr
		}
		first := true
		var serr error
		werr := rc.Write(func(s uintptr) bool {
			if first { // the poller has not said writable yet
				first = false
				return false
			}
			var errno int
			errno, serr = unix.GetsockoptInt(int(s), unix.SOL_SOCKET, unix.SO_ERROR)
			if serr == nil && errno != 0 {
				serr = unix.Errno(errno)
			}
			return true
		})
		stop()
		f.SetWriteDeadline(time.Time{})
		if werr == nil {
			werr = serr
		}
		if werr != nil {
			f.Close()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, os.NewSyscallError("connect", werr)
		}
	}
	c := &vsockConn{File: f, remote: vsockAddr{cid, port}}
	if sa, err := unix.Getsockname(fd); err == nil {
		if vm, ok := sa.(*unix.SockaddrVM); ok {
			c.local = vsockAddr{vm.CID, vm.Port}
		}
	}
	return c, nil
}
