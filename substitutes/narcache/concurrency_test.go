package narcache

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// content is the data stored for key i: its length and bytes depend on i
// only, so every reader can check what it got whichever writer it saw.
func content(i int) []byte {
	sum := sha256.Sum256([]byte{byte(i)})
	return bytes.Repeat(sum[:], 8+i%24)
}

// TestConcurrent runs writers, readers and removers over a small key space
// with a limit that forces evictions, and checks that every read returns a
// whole entry and that the index matches the disk at the end.
func TestConcurrent(t *testing.T) {
	const (
		keys       = 12
		goroutines = 8
		ops        = 300
		limit      = 4 * 32 * 20
	)
	dir := t.TempDir()
	c := openTest(t, dir, limit, newClock())
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range ops {
				if err := randomOp(c, rng, rng.IntN(keys)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkIndexMatchesDisk(t, c, dir, limit)
}

// randomOp does one Put, Get, aborted Put or Remove of key i.
func randomOp(c *Cache, rng *rand.Rand, i int) error {
	key := testKey(i)
	switch rng.IntN(8) {
	case 0, 1, 2:
		w, err := c.Create(key)
		if err != nil {
			return err
		}
		defer w.Abort()
		if _, err := w.Write(content(i)); err != nil {
			return err
		}
		if rng.IntN(4) == 0 {
			return w.Abort()
		}
		return w.Commit()
	case 3:
		return c.Remove(key)
	default:
		return checkRead(c, key, content(i))
	}
}

// checkRead reads key and compares it with want; a miss is fine.
func checkRead(c *Cache, key string, want []byte) error {
	r, size, err := c.Get(key)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) || size != int64(len(want)) {
		return errors.New("read a torn or foreign entry: " + key)
	}
	return nil
}

// checkIndexMatchesDisk compares the index with the files in dir.
func checkIndexMatchesDisk(t *testing.T, c *Cache, dir string, limit int64) {
	t.Helper()
	if c.Size() > limit {
		t.Errorf("Size() = %d over limit %d", c.Size(), limit)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "zstd", "*"))
	var onDisk int64
	for _, f := range files {
		info, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		onDisk += info.Size()
	}
	if len(files) != c.Len() || onDisk != c.Size() {
		t.Errorf("disk has %d files, %d bytes; index %d entries, %d bytes", len(files), onDisk, c.Len(), c.Size())
	}
	assertNoTmp(t, dir)
}
