package ga_test

import (
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/ga"
	"github.com/qmpsh/qmpsh/pkg/ga/gatest"
)

func BenchmarkZZReadFile(b *testing.B) {
	a := gatest.StartAgent(b)
	p := filepath.Join(a.Dir, "big")
	buf := make([]byte, 64<<20)
	rand.Read(buf)
	os.WriteFile(p, buf, 0o600)
	c := ga.NewClient()
	ctx := context.Background()
	if err := c.Connect(ctx, a.Path); err != nil {
		b.Fatal(err)
	}
	defer c.Disconnect()
	b.SetBytes(64 << 20)
	for b.Loop() {
		if _, err := c.ReadFile(ctx, p, io.Discard, nil); err != nil {
			b.Fatal(err)
		}
	}
}
