package shell

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// sendfd runs the sendfd built-in: it opens a local file and passes the
// descriptor to QEMU over the UNIX socket (SCM_RIGHTS), with getfd when
// fdname= is given, else with add-fd, for a file QEMU cannot open itself
// (a different user, a sandbox, a mount namespace).
//
//	sendfd PATH fdname=NAME [mode=rw|ro|wo]
//	sendfd PATH [fdset-id=N] [opaque=TEXT] [mode=rw|ro|wo]
func (sh *shell) sendfd(ctx context.Context, rest string) {
	command, args, path, flag, err := parseSendfd(rest)
	if err != nil {
		sh.fail(fmt.Errorf("sendfd: %w", err))
		return
	}
	if sh.refused() {
		return
	}
	f, err := openForQEMU(path, flag)
	if err != nil {
		sh.fail(fmt.Errorf("sendfd: %w", err))
		return
	}
	defer f.Close()
	cctx, cancel := sh.callContext(ctx)
	defer cancel()
	ret, err := sh.Client.ExecuteWithFiles(cctx, command, args, f)
	if err != nil && cctx.Err() != nil && ctx.Err() == nil {
		sh.flushEvents()
		sh.notice("interrupted: stopped waiting for the reply")
		return
	}
	sh.report(ret, err, false)
}

// openForQEMU opens path as flag asks, for QEMU, without ever waiting.
// Opening a FIFO read-only or write-only blocks until its other end is
// opened, in open(2), which neither Ctrl-C nor the call's timeout can
// interrupt: the shell would hang. With O_NONBLOCK the open returns at
// once (write-only fails with ENXIO if nobody reads), and the descriptor
// is then made blocking again, as QEMU expects to get it (the flag is
// shared with QEMU's copy). A directory is refused: QEMU has no use for
// one, and would only fail later, in whatever uses the descriptor.
func openForQEMU(path string, flag int) (*os.File, error) {
	fd, err := syscall.Open(path, flag|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		perr := &os.PathError{Op: "open", Path: path, Err: err}
		switch {
		case errors.Is(err, os.ErrPermission) && flag != os.O_RDONLY:
			return nil, fmt.Errorf("%w (mode=ro passes it read-only)", perr)
		case err == syscall.ENXIO && flag == os.O_WRONLY && isFIFO(path):
			return nil, fmt.Errorf("%s is a FIFO that nothing reads yet: start its reader first, or pass it mode=rw", path)
		}
		return nil, perr
	}
	if err := syscall.SetNonblock(fd, false); err != nil {
		syscall.Close(fd)
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s is a directory: pass a file", path)
	}
	return f, nil
}

func isFIFO(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode()&os.ModeNamedPipe != 0
}

// parseSendfd parses the sendfd built-in's arguments into the command to
// send (getfd or add-fd), its arguments, and how to open the file.
func parseSendfd(rest string) (command string, args map[string]any, path string, flag int, err error) {
	lx := lexer{s: rest}
	toks, err := lx.rest()
	if err != nil {
		return "", nil, "", 0, err
	}
	ws := words(toks)
	if len(ws) == 0 {
		return "", nil, "", 0, errors.New("expected a file, e.g. sendfd /path/to/disk.img fdname=disk0")
	}
	path = ws[0]
	kvs, err := splitArgs(ws[1:])
	if err != nil {
		return "", nil, "", 0, err
	}
	flag = os.O_RDWR
	args = map[string]any{}
	for _, kv := range kvs {
		switch kv.Key {
		case "mode":
			switch kv.Value {
			case "rw":
				flag = os.O_RDWR
			case "ro":
				flag = os.O_RDONLY
			case "wo":
				flag = os.O_WRONLY
			default:
				return "", nil, "", 0, fmt.Errorf("mode must be rw, ro or wo, not %q", kv.Value)
			}
		case "fdname", "opaque":
			args[kv.Key] = kv.Value
		case "fdset-id":
			n, err := strconv.ParseInt(kv.Value, 10, 64)
			if err != nil {
				return "", nil, "", 0, fmt.Errorf("fdset-id must be an integer, not %q", kv.Value)
			}
			args[kv.Key] = n
		default:
			return "", nil, "", 0, fmt.Errorf("unknown argument %q (expected fdname=, or fdset-id= and opaque=, and mode=)", kv.Key)
		}
	}
	if _, ok := args["fdname"]; ok {
		if len(args) > 1 {
			return "", nil, "", 0, errors.New("fdname= (getfd) does not go with fdset-id= or opaque= (add-fd)")
		}
		return "getfd", args, path, flag, nil
	}
	return "add-fd", args, path, flag, nil
}
