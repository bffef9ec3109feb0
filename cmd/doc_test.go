package cmd

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every package that starts goroutines says in its doc.go which ones and
// who guards what (issue 11): cmd's included.
func TestDocOwnershipTables(t *testing.T) {
	for _, dir := range []string{".", "../pkg/protocol", "../pkg/qmp", "../pkg/qmp/qmptest", "../pkg/shell", "../pkg/proxy"} {
		src, err := os.ReadFile(filepath.Join(dir, "doc.go"))
		if err != nil {
			t.Errorf("%s: %v", dir, err)
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), "doc.go", src, parser.ParseComments|parser.PackageClauseOnly)
		if err != nil || f.Doc == nil {
			t.Errorf("%s/doc.go: no package doc (%v)", dir, err)
			continue
		}
		doc := f.Doc.Text()
		for _, want := range []string{"goroutine", "started by", "stopped by", "guards"} {
			if !strings.Contains(doc, want) {
				t.Errorf("%s/doc.go: the package doc has no %q column", dir, want)
			}
		}
	}
}
