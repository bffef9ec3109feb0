package cmd

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Every package that starts goroutines says in its doc.go which ones and
// who guards what (issue 11): cmd's included. The packages are found, not
// listed, so that a new one cannot go without its table.
func TestDocOwnershipTables(t *testing.T) {
	dirs := goroutineDirs(t, "..")
	if len(dirs) < 6 {
		t.Fatalf("found goroutines started in %d packages, %v: the search is broken", len(dirs), dirs)
	}
	for _, dir := range dirs {
		src, err := os.ReadFile(filepath.Join(dir, "doc.go"))
		if err != nil {
			t.Errorf("%s starts goroutines and has no doc.go with their table: %v", dir, err)
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

// goroutineDirs returns the directories under root (testdata's aside)
// whose non-test Go files start a goroutine: a go statement, a call of a
// method named Go (sync.WaitGroup's), or of an AfterFunc (context's and
// time's run their function on a goroutine of its own).
func goroutineDirs(t *testing.T, root string) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (name == "testdata" || strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		if dir := filepath.Dir(path); !slices.Contains(dirs, dir) && startsGoroutine(t, path) {
			dirs = append(dirs, dir)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

func startsGoroutine(t *testing.T, path string) bool {
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			found = true
		case *ast.CallExpr:
			if sel, ok := n.Fun.(*ast.SelectorExpr); ok && (sel.Sel.Name == "Go" || sel.Sel.Name == "AfterFunc") {
				found = true
			}
		}
		return !found
	})
	return found
}
