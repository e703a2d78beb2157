package local

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tbfg/tbfg-node/internal/testdir"
	"github.com/tbfg/tbfg-node/store"
)

func addText(t *testing.T, s *Store, name string, refs ...store.Path) store.Path {
	t.Helper()
	p, err := s.AddText(context.Background(), name, []byte("contents of "+name), refs)
	must(t, err)
	return p
}

// TestRemove checks that Remove deletes an item's record and files, refuses
// an item that a staying item refers to, and accepts it with its referrer.
func TestRemove(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	dep := addText(t, s, "dep")
	top := addText(t, s, "top", dep)
	if _, err := s.Remove(ctx, dep); !errors.Is(err, ErrReferenced) {
		t.Fatalf("remove a referenced item: %v, want ErrReferenced", err)
	}
	if ok, _ := s.IsValid(dep); !ok {
		t.Fatal("a refused removal removed the item")
	}
	freed, err := s.Remove(ctx, top, dep)
	must(t, err)
	if freed <= 0 {
		t.Errorf("freed %d bytes", freed)
	}
	for _, p := range []store.Path{top, dep} {
		if ok, _ := s.IsValid(p); ok {
			t.Errorf("%s still valid", p)
		}
		if _, err := os.Lstat(filepath.Join(s.RealDir(), p.Base())); !os.IsNotExist(err) {
			t.Errorf("%s: files still there: %v", p, err)
		}
	}
	if _, err := s.Remove(ctx, top); !errors.Is(err, ErrNotValid) {
		t.Errorf("remove an item twice: %v, want ErrNotValid", err)
	}
	again := addText(t, s, "dep")
	if again != dep {
		t.Fatalf("re-added %s as %s", dep, again)
	}
	if ok, _ := s.IsValid(dep); !ok {
		t.Error("an item removed and added again is not valid")
	}
}

// TestOpenFinishesRemoval checks that Open deletes the files of a removal
// that a crash interrupted after its record went (noted, with the files
// still in place or already renamed to trash) and any trash left.
func TestOpenFinishesRemoval(t *testing.T) {
	dir := filepath.Join(testdir.New(t), "store")
	s, err := Open(dir, store.GuixDir)
	must(t, err)
	noted := addText(t, s, "noted")
	kept := addText(t, s, "kept")
	// What remove does before it deletes the files.
	must(t, s.db.Update(func(tx *bolt.Tx) error {
		must(t, tx.Bucket(bucketPaths).Delete([]byte(noted.HashPart())))
		return tx.Bucket(bucketRemoving).Put([]byte(noted.HashPart()), []byte(noted.Base()))
	}))
	must(t, os.Mkdir(filepath.Join(dir, trashPrefix+"leftover"), 0o555))
	must(t, s.Close())
	s, err = Open(dir, store.GuixDir)
	must(t, err)
	defer s.Close()
	entries, err := os.ReadDir(dir)
	must(t, err)
	if len(entries) != 1 || entries[0].Name() != kept.Base() {
		t.Errorf("store directory after Open: %v, want only %s", entries, kept.Base())
	}
	must(t, s.Dump(kept, io.Discard))
	must(t, s.db.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bucketRemoving).Cursor().First(); k != nil {
			t.Errorf("removal note %s left after Open", k)
		}
		return nil
	}))
}

// TestUsage checks that an item's last use is its registration until it is
// served or touched.
func TestUsage(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := Open(filepath.Join(testdir.New(t), "store"), store.GuixDir, WithClock(func() time.Time { return now }))
	must(t, err)
	defer s.Close()
	a := addText(t, s, "a")
	b := addText(t, s, "b")
	now = now.Add(time.Hour)
	must(t, s.Dump(a, io.Discard))
	us, err := s.Usage()
	must(t, err)
	got := map[store.Path]time.Time{}
	for _, u := range us {
		got[u.Path] = u.LastUsed
		if u.Size <= 0 {
			t.Errorf("%s: size %d", u.Path, u.Size)
		}
	}
	if !got[a].Equal(now) || !got[b].Equal(now.Add(-time.Hour)) {
		t.Errorf("last uses %v; want a served at %v, b registered an hour before", got, now)
	}
}
