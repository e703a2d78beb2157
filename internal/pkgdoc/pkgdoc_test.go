package pkgdoc

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryPackageHasDocGo fails when a directory with Go files has no doc.go
// carrying the package comment, so that each package says what it owns.
func TestEveryPackageHasDocGo(t *testing.T) {
	root := filepath.Join("..", "..")
	seen := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != root || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		if seen[filepath.Dir(path)] {
			return nil
		}
		seen[filepath.Dir(path)] = true
		doc := filepath.Join(filepath.Dir(path), "doc.go")
		f, perr := parser.ParseFile(token.NewFileSet(), doc, nil, parser.PackageClauseOnly|parser.ParseComments)
		if perr != nil {
			t.Errorf("%s: package has no readable doc.go: %v", filepath.Dir(path), perr)
			return nil
		}
		if f.Doc == nil || !strings.HasPrefix(f.Doc.Text(), "Package "+f.Name.Name+" ") && f.Name.Name != "main" {
			t.Errorf("%s: doc.go lacks a comment starting %q", doc, "Package "+f.Name.Name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
