package local

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/testdir"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/nar"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(testdir.New(t), "store"), store.GuixDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// makeTree writes a small tree (file, executable, symlink, subdirectory)
// whose file mentions refs, and returns its NAR.
func makeTree(t *testing.T, refs ...store.Path) (dir string, archive []byte) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "tree")
	must(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	var body []byte
	for _, r := range refs {
		body = append(body, r+"\n"...)
	}
	must(t, os.WriteFile(filepath.Join(dir, "file"), body, 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "sub", "run"), []byte("#!/bin/sh\n"), 0o755))
	must(t, os.Symlink("sub/run", filepath.Join(dir, "link")))
	var buf bytes.Buffer
	must(t, nar.Dump(&buf, dir))
	return dir, buf.Bytes()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func sumOf(t *testing.T, b []byte) nar.Sum {
	s, err := nar.HashReader(bytes.NewReader(b))
	must(t, err)
	return s
}

func TestAddFromNARRoundTrip(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	_, leaf := makeTree(t)
	must(t, s.AddFromNAR(ctx, &Info{Path: pathA, Nar: sumOf(t, leaf)}, bytes.NewReader(leaf)))
	_, top := makeTree(t, pathA)
	info := &Info{Path: pathB, Nar: sumOf(t, top), References: []store.Path{pathA, pathB}, Deriver: pathC}
	must(t, s.AddFromNAR(ctx, info, bytes.NewReader(top)))

	got, err := s.Query(pathB)
	must(t, err)
	if got.Nar != info.Nar || !slices.Equal(got.References, []store.Path{pathA, pathB}) || got.Deriver != pathC {
		t.Errorf("Query = %+v, want %+v", got, info)
	}
	if time.Since(got.Registered) > time.Minute {
		t.Errorf("registration time %v", got.Registered)
	}
	var out bytes.Buffer
	must(t, s.Dump(pathB, &out))
	if !bytes.Equal(out.Bytes(), top) {
		t.Error("Dump differs from the archive added")
	}
	closure, err := s.Closure(pathB)
	must(t, err)
	if !slices.Equal(closure, []store.Path{pathA, pathB}) {
		t.Errorf("Closure = %v", closure)
	}
	for _, name := range []string{"", "sub", "sub/run"} {
		fi, err := os.Lstat(filepath.Join(s.RealDir(), pathB.Base(), name))
		must(t, err)
		if fi.Mode().Perm() != 0o555 || fi.ModTime().Unix() != 1 {
			t.Errorf("added %q has mode %v, mtime %v; want 0555 and 1", name, fi.Mode(), fi.ModTime().Unix())
		}
	}
	// Adding a valid path again succeeds without reading.
	must(t, s.AddFromNAR(ctx, info, errReader{}))
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("read called") }

// TestAddFromNARFailures checks that a bad archive, a wrong hash or size, or
// a missing reference leave nothing behind.
func TestAddFromNARFailures(t *testing.T) {
	_, good := makeTree(t)
	sum := sumOf(t, good)
	wrongHash := sum
	wrongHash.SHA256[0] ^= 1
	shorter := sum
	shorter.Size -= 8
	tests := []struct {
		name    string
		info    Info
		archive []byte
		want    error
	}{
		{"wrong hash", Info{Path: pathA, Nar: wrongHash}, good, ErrHashMismatch},
		{"wrong size", Info{Path: pathA, Nar: shorter}, good, nil},
		{"truncated", Info{Path: pathA, Nar: sum}, good[:len(good)-16], nar.ErrTruncated},
		{"garbage", Info{Path: pathA, Nar: sum}, []byte("not a nar at all"), nar.ErrNotNAR},
		{"missing reference", Info{Path: pathA, Nar: sum, References: []store.Path{pathC}}, good, ErrMissingReference},
		{"other store dir", Info{Path: store.Path("/nix/store/" + hashA + "-a"), Nar: sum}, good, store.ErrBadPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t)
			err := s.AddFromNAR(context.Background(), &tt.info, bytes.NewReader(tt.archive))
			if err == nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("AddFromNAR = %v, want %v", err, tt.want)
			}
			t.Log(err)
			entries, _ := os.ReadDir(s.RealDir())
			if len(entries) != 0 {
				t.Errorf("left behind %v", entries)
			}
			if ok, _ := s.IsValid(pathA); ok {
				t.Error("path became valid")
			}
		})
	}
}

// TestAddReplacesLeftover checks that an unregistered directory left at the
// target (a crash between rename and registration) is replaced.
func TestAddReplacesLeftover(t *testing.T) {
	s := openTest(t)
	leftover := filepath.Join(s.RealDir(), pathA.Base())
	must(t, os.MkdirAll(filepath.Join(leftover, "junk"), 0o755))
	must(t, os.Chmod(filepath.Join(leftover, "junk"), 0o555))
	must(t, os.Chmod(leftover, 0o555)) // read-only, as a canonicalised item is
	_, archive := makeTree(t)
	must(t, s.AddFromNAR(context.Background(), &Info{Path: pathA, Nar: sumOf(t, archive)}, bytes.NewReader(archive)))
	if _, err := os.Lstat(filepath.Join(s.RealDir(), pathA.Base(), "junk")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leftover survived: %v", err)
	}
}

// TestInspectRegister is how a build registers outputs written in place: one
// refers to the other and to itself.
func TestInspectRegister(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	unlock, err := s.Lock(ctx, pathA, pathB)
	must(t, err)
	defer unlock()
	src, _ := makeTree(t, pathA, pathB)
	must(t, os.Rename(src, filepath.Join(s.RealDir(), pathA.Base())))
	must(t, os.WriteFile(filepath.Join(s.RealDir(), pathB.Base()), []byte("plain "+pathA+"\n"), 0o644))
	var infos []*Info
	for _, p := range []store.Path{pathA, pathB} {
		info, err := s.Inspect(p, []store.Path{pathA, pathB, pathC})
		must(t, err)
		info.Deriver = pathC
		infos = append(infos, info)
	}
	if !slices.Equal(infos[0].References, []store.Path{pathA, pathB}) || !slices.Equal(infos[1].References, []store.Path{pathA}) {
		t.Fatalf("references %v, %v", infos[0].References, infos[1].References)
	}
	want, err := nar.HashPath(filepath.Join(s.RealDir(), pathA.Base()))
	must(t, err)
	if infos[0].Nar != want {
		t.Errorf("Inspect NAR %v, want %v", infos[0].Nar, want)
	}
	if err := s.RemoveInvalid(pathA); err != nil {
		t.Fatal(err)
	}
	if err := s.Register(infos[1]); !errors.Is(err, ErrMissingReference) {
		t.Errorf("Register with a removed reference = %v", err)
	}
}

func TestRemoveInvalidRefusesValid(t *testing.T) {
	s := openTest(t)
	p, err := s.AddText(context.Background(), "x", []byte("x"), nil)
	must(t, err)
	if err := s.RemoveInvalid(p); err == nil {
		t.Fatal("removed a valid path")
	}
	if ok, _ := s.IsValid(p); !ok {
		t.Fatal("path no longer valid")
	}
}

// TestLockWaits checks that a second Lock on an overlapping set waits for the
// first to be released, and gives up with its context.
func TestLockWaits(t *testing.T) {
	s := openTest(t)
	unlock, err := s.Lock(context.Background(), pathA, pathB)
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Lock(ctx, pathB, pathC); !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock on a held path = %v, want context.Canceled", err)
	}
	got := make(chan error, 1)
	go func() {
		u, err := s.Lock(context.Background(), pathB)
		if err == nil {
			u()
		}
		got <- err
	}()
	unlock()
	must(t, <-got)
}

func TestReopen(t *testing.T) {
	real := filepath.Join(t.TempDir(), "store")
	s, err := Open(real, store.GuixDir)
	must(t, err)
	p, err := s.AddText(context.Background(), "hello.txt", []byte("hello"), nil)
	must(t, err)
	if _, err := Open(real, store.GuixDir); !errors.Is(err, ErrLocked) {
		t.Errorf("second Open = %v, want ErrLocked", err)
	}
	must(t, s.Close())
	must(t, s.Close()) // idempotent
	if _, err := s.Query(p); !errors.Is(err, ErrClosed) {
		t.Errorf("Query after Close = %v, want ErrClosed", err)
	}
	s, err = Open(real, store.GuixDir)
	must(t, err)
	defer s.Close()
	info, err := s.Query(p)
	must(t, err)
	if info.CA == "" || info.Nar.Size == 0 {
		t.Errorf("after reopen: %+v", info)
	}
	valid, err := s.Valid()
	must(t, err)
	if !slices.Equal(valid, []store.Path{p}) {
		t.Errorf("Valid = %v", valid)
	}
}

// TestOpenRemovesStaging checks that Open deletes the staging directories a
// crash left in the middle of an add (read-only, as canonicalised items
// are), and nothing else.
func TestOpenRemovesStaging(t *testing.T) {
	real := filepath.Join(t.TempDir(), "store")
	s, err := Open(real, store.GuixDir)
	must(t, err)
	p, err := s.AddText(context.Background(), "kept.txt", []byte("kept"), nil)
	must(t, err)
	must(t, s.Close())
	staged := filepath.Join(real, stagingPrefix+"123", pathA.Base())
	must(t, os.MkdirAll(filepath.Join(staged, "sub"), 0o755))
	must(t, os.Chmod(filepath.Join(staged, "sub"), 0o555))
	must(t, os.Chmod(staged, 0o555))
	s, err = Open(real, store.GuixDir)
	must(t, err)
	defer s.Close()
	if _, err := os.Lstat(filepath.Dir(staged)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("staging directory survived Open: %v", err)
	}
	if ok, err := s.IsValid(p); !ok || err != nil {
		t.Errorf("%s after Open: valid %v, %v", p, ok, err)
	}
	if _, err := os.Lstat(filepath.Join(real, p.Base())); err != nil {
		t.Errorf("item removed: %v", err)
	}
}
