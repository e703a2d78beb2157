package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestWriteAndCreate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		write   func(string, []byte, fs.FileMode) error
		old     string // content of the file before, "" for none
		perm    fs.FileMode
		want    string // content after
		wantErr error
	}{
		{"write new", Write, "", 0o600, "new", nil},
		{"write replaces", Write, "old", 0o644, "new", nil},
		{"create new", Create, "", 0o600, "new", nil},
		{"create keeps", Create, "old", 0o600, "old", fs.ErrExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			if tc.old != "" {
				if err := os.WriteFile(path, []byte(tc.old), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			err := tc.write(path, []byte("new"), tc.perm)
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			got, rerr := os.ReadFile(path)
			if rerr != nil || string(got) != tc.want {
				t.Fatalf("file holds %q (%v), want %q", got, rerr, tc.want)
			}
			if fi, _ := os.Stat(path); err == nil && fi.Mode().Perm() != tc.perm {
				t.Errorf("mode %v, want %v", fi.Mode().Perm(), tc.perm)
			}
			checkOnly(t, dir, "f")
		})
	}
}

func TestWriteIntoMissingDir(t *testing.T) {
	dir := t.TempDir()
	for _, write := range []func(string, []byte, fs.FileMode) error{Write, Create} {
		if err := write(filepath.Join(dir, "no", "f"), []byte("x"), 0o600); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("write into a missing directory: %v, want fs.ErrNotExist", err)
		}
	}
	checkOnly(t, dir)
}

func TestFailedMoveLeavesNoTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	// A directory in the way: the rename fails after the data was written.
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "d", "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(filepath.Join(dir, "d"), []byte("x"), 0o600); err == nil {
		t.Fatal("Write over a non-empty directory succeeded")
	}
	checkOnly(t, dir, "d")
}

// checkOnly fails t unless dir holds exactly names.
func checkOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, names) {
		t.Fatalf("%s holds %q, want %q: a temporary file left behind?", dir, got, names)
	}
}
