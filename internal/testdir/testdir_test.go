package testdir

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMakeRemovable makes a tree of read-only directories, as store items
// are, and checks that everything in it can then be deleted.
func TestMakeRemovable(t *testing.T) {
	dir := t.TempDir()
	item := filepath.Join(dir, "item")
	if err := os.MkdirAll(filepath.Join(item, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(item, "sub", "file"), []byte("x"), 0o444); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(item, "sub"), item} {
		if err := os.Chmod(d, 0o555); err != nil {
			t.Fatal(err)
		}
	}
	if err := MakeRemovable(dir); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, item, filepath.Join(item, "sub")} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm()&0o700 != 0o700 {
			t.Errorf("%s: %v, %v; want the owner to have rwx", d, fi.Mode(), err)
		}
	}
	if err := os.RemoveAll(item); err != nil {
		t.Fatal(err)
	}
	if err := MakeRemovable(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("missing directory: %v", err)
	}
}

// TestNew leaves a read-only tree in the directory; the test's own cleanup
// must still remove it (checked by the testing package, which fails the
// test otherwise).
func TestNew(t *testing.T) {
	item := filepath.Join(New(t), "item")
	if err := os.MkdirAll(item, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(item, "file"), []byte("x"), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(item, 0o555); err != nil {
		t.Fatal(err)
	}
}
