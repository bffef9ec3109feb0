package cmd

import (
	"path/filepath"
	"strings"
	"testing"
)

// An empty or malformed address is a usage error, found before anything
// is sent, with the same one-line message whichever command took it; -s
// given empty is not taken as absent (the QMP_SOCKET and QGA_SOCKET set
// here would then be dialled, exit 3).
func TestBadAddressIsUsage(t *testing.T) {
	none := filepath.Join(t.TempDir(), "none.sock")
	t.Setenv("QMP_SOCKET", none)
	t.Setenv("QGA_SOCKET", none)
	for _, tc := range []struct {
		args []string
		says string // what names the address
	}{
		{[]string{"exec", "-s", "", "query-status"}, "-s '': empty address"},
		{[]string{"exec", "-s", "unix:", "query-status"}, `-s 'unix:': empty socket path after "unix:"`},
		{[]string{"exec", "-s", "tcp:", "query-status"}, "-s 'tcp:': expected tcp:HOST:PORT"},
		{[]string{"exec", "-s", "tls:host", "query-status"}, "-s 'tls:host': expected tls:HOST:PORT"},
		{[]string{"exec", "-s", "localhost:99999", "query-status"}, "-s 'localhost:99999': the port is not a number from 0 to 65535"},
		{[]string{"exec", "-s", "tcp:localhost:70000", "query-status"}, "-s 'tcp:localhost:70000': expected tcp:HOST:PORT with a port number from 0 to 65535"},
		// Fan-out: one bad target refuses the whole run.
		{[]string{"exec", "-s", none, "-s", "", "query-status"}, "-s '': empty address"},
		{[]string{"events", "-s", ""}, "-s '': empty address"},
		{[]string{"schema", "-s", ""}, "-s '': empty address"},
		{[]string{"connect", ""}, "connect '': empty address"},
		{[]string{"connect", "tcp:"}, "connect 'tcp:': expected tcp:HOST:PORT"},
		{[]string{"accept", "unix:"}, "accept 'unix:': empty socket path"},
		{[]string{"proxy", "-s", "", "--listen", none}, "-s '': empty address"},
		{[]string{"proxy", "-s", none, "--listen", "unix:"}, "--listen 'unix:': empty socket path"},
		{[]string{"job", "wait", "-s", "", "j0"}, "-s '': empty address"},
		{[]string{"job", "list", "-s", "tcp:x"}, "-s 'tcp:x': expected tcp:HOST:PORT"},
		{[]string{"migrate", "-s", "", "exec:cat"}, "-s '': empty address"},
		{[]string{"ga", "exec", "-s", "", "guest-ping"}, "-s '': empty address"},
		{[]string{"ga", "connect", ""}, "ga connect '': empty address"},
		{[]string{"ga", "run", "-s", "unix:", "--", "true"}, "-s 'unix:': empty socket path"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := run(t, "", tc.args...)
			r.mustSay(t, ExitUsage, "qmpsh: "+tc.says, ": give a UNIX socket path, HOST:PORT, unix:PATH, tcp:HOST:PORT or tls:HOST:PORT\n")
		})
	}
	t.Run("QMP_SOCKET", func(t *testing.T) {
		t.Setenv("QMP_SOCKET", "tcp:")
		run(t, "", "exec", "query-status").mustSay(t, ExitUsage, "qmpsh: QMP_SOCKET='tcp:': expected tcp:HOST:PORT")
	})
	// What ParseAddress takes passes, globs included.
	for _, a := range []string{"qmp.sock", "/run/vm/*.qmp", "localhost:4444", "[::1]:4444", "unix:a:1", "tcp::4444", "tls:h:1"} {
		if err := checkAddress("-s ", a); err != nil {
			t.Errorf("checkAddress(%q) = %v", a, err)
		}
	}
}
