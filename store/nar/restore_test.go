package nar

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestRestoreRoots restores archives whose root is each kind of object.
func TestRestoreRoots(t *testing.T) {
	tests := []struct {
		name  string
		parts []any
		check func(t *testing.T, p string)
	}{
		{"regular", []any{"nix-archive-1", "(", "type", "regular", "contents", "hi", ")"}, func(t *testing.T, p string) {
			if b, err := os.ReadFile(p); err != nil || string(b) != "hi" {
				t.Fatalf("file holds %q, %v", b, err)
			}
		}},
		{"executable", []any{"nix-archive-1", "(", "type", "regular", "executable", "", "contents", "", ")"}, func(t *testing.T, p string) {
			if fi, err := os.Lstat(p); err != nil || fi.Mode()&0o100 == 0 || !fi.Mode().IsRegular() {
				t.Fatalf("mode %v, %v; want an executable file", fi.Mode(), err)
			}
		}},
		{"symlink", []any{"nix-archive-1", "(", "type", "symlink", "target", "/nowhere", ")"}, func(t *testing.T, p string) {
			if target, err := os.Readlink(p); err != nil || target != "/nowhere" {
				t.Fatalf("link to %q, %v", target, err)
			}
		}},
		{"directory", cat(pre, fileA, linkB, []any{")"}), func(t *testing.T, p string) {
			if b, err := os.ReadFile(filepath.Join(p, "a")); err != nil || string(b) != "hello" {
				t.Fatalf("a holds %q, %v", b, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			p := filepath.Join(parent, "out")
			if err := Restore(bytes.NewReader(enc(tt.parts...)), p); err != nil {
				t.Fatal(err)
			}
			tt.check(t, p)
			assertOnly(t, parent, "out")
		})
	}
}

// TestRestoreFailureLeavesNothing checks that a restore failing late in the
// archive removes everything it wrote, and that the target never appears.
func TestRestoreFailureLeavesNothing(t *testing.T) {
	for name, parts := range map[string][]any{
		"truncated":     cat(pre, fileA, linkB),
		"unsorted":      cat(pre, fileA, entryOf("0"), []any{")"}),
		"trailing":      cat(pre, fileA, []any{")", "x"}),
		"trailing zero": cat(pre, fileA, []any{")", []byte{0}}),
	} {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			err := Restore(bytes.NewReader(enc(parts...)), filepath.Join(parent, "out"))
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a FormatError", err)
			}
			assertOnly(t, parent)
		})
	}
}

// TestRestoreTargetExists checks that an existing target, even an empty
// directory or a dangling symlink, is refused and left alone.
func TestRestoreTargetExists(t *testing.T) {
	a := enc(cat(pre, fileA, []any{")"})...)
	outside := t.TempDir()
	for name, mk := range map[string]func(p string) error{
		"empty dir":        func(p string) error { return os.Mkdir(p, 0o755) },
		"file":             func(p string) error { return os.WriteFile(p, nil, 0o644) },
		"dangling symlink": func(p string) error { return os.Symlink(filepath.Join(outside, "x"), p) },
	} {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			p := filepath.Join(parent, "out")
			if err := mk(p); err != nil {
				t.Fatal(err)
			}
			if err := Restore(bytes.NewReader(a), p); !errors.Is(err, ErrExists) {
				t.Fatalf("got %v, want ErrExists", err)
			}
			assertOnly(t, parent, "out")
			assertOnly(t, outside)
		})
	}
}

// TestRestoreMissingParent checks that the target's parent is not created.
func TestRestoreMissingParent(t *testing.T) {
	parent := t.TempDir()
	a := enc(cat(pre, []any{")"})...)
	if err := Restore(bytes.NewReader(a), filepath.Join(parent, "no", "out")); err == nil {
		t.Fatal("restore into a missing parent succeeded")
	}
	assertOnly(t, parent)
}

// assertOnly fails unless dir holds exactly the entries names.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, names) {
		t.Fatalf("%s holds %q, want %q", dir, got, names)
	}
}
