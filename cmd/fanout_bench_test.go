package cmd

import (
	"io"
	"strings"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

// BenchmarkExecFanOut200 is `qmpsh exec` on 200 targets at once, fake
// QMP servers in this process: one op is the whole run, connect,
// negotiate, query-status and print for all 200, so ns/op is its wall
// time. Run with: go test -run '^$' -bench FanOut ./cmd
func BenchmarkExecFanOut200(b *testing.B) {
	const n = 200
	args := []string{"exec", "query-status"}
	for range n {
		s := qmptest.NewServer(qmptest.Standard)
		b.Cleanup(s.Close)
		args = append(args, "-s", s.Addr)
	}
	for _, parallel := range []string{"1", "8", "32", "200"} {
		b.Run("parallel="+parallel, func(b *testing.B) {
			for b.Loop() {
				var out strings.Builder
				ios := &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: io.Discard}
				if code := Main(append(args, "--parallel", parallel), ios); code != 0 {
					b.Fatalf("exit %d", code)
				}
				if c := strings.Count(out.String(), "\n"); c != n {
					b.Fatalf("%d lines, want %d", c, n)
				}
			}
		})
	}
}
