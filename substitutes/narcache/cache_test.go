package narcache

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// nixAlphabet is nix-base32's digit set.
const nixAlphabet = "0123456789abcdfghijklmnpqrsvwxyz"

// testBase returns a valid store item base name that differs for each i.
func testBase(i int, name string) string {
	h := []byte(strings.Repeat("0", 32))
	for p := 31; p >= 0 && i > 0; p-- {
		h[p] = nixAlphabet[i%32]
		i /= 32
	}
	return string(h) + "-" + name
}

// testKey is the zstd key of testBase(i, "item").
func testKey(i int) string { return Key("zstd", testBase(i, "item")) }

// fakeClock is a settable clock for access times.
type fakeClock struct{ t time.Time }

func (f *fakeClock) now() time.Time          { return f.t }
func (f *fakeClock) advance(d time.Duration) { f.t = f.t.Add(d) }
func newClock() *fakeClock                   { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }
func openTest(t *testing.T, dir string, limit int64, clk *fakeClock) *Cache {
	t.Helper()
	c, err := Open(dir, Options{MaxBytes: limit, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// put stores data under key and fails the test on error.
func put(t testing.TB, c *Cache, key string, data []byte) {
	t.Helper()
	w, err := c.Create(key)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

// get reads key's entry whole, or returns the error of Get.
func get(t testing.TB, c *Cache, key string) ([]byte, error) {
	t.Helper()
	r, size, err := c.Get(key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != size {
		t.Fatalf("Get(%s) size %d, read %d bytes", key, size, len(data))
	}
	return data, nil
}

func TestValidKey(t *testing.T) {
	base := testBase(7, "hello-2.12")
	tests := []struct {
		name, key string
		ok        bool
	}{
		{"zstd", "zstd/" + base, true},
		{"none", "none/" + base, true},
		{"digit in compression", "bzip2/" + base, true},
		{"name with allowed punctuation", "gzip/" + testBase(1, "a+b-c._?=d"), true},
		{"no compression", base, false},
		{"empty compression", "/" + base, false},
		{"upper-case compression", "GZIP/" + base, false},
		{"compression starts with digit", "2zip/" + base, false},
		{"compression too long", strings.Repeat("z", 17) + "/" + base, false},
		{"dot dot", "../" + base, false},
		{"dot dot as item", "zstd/..", false},
		{"absolute", "/etc/passwd", false},
		{"nested", "zstd/" + base + "/etc", false},
		{"traversal inside name", "zstd/" + testBase(1, "a/../../x"), false},
		{"hidden tmp dir", ".tmp/" + base, false},
		{"bad hash letter", "zstd/" + strings.Repeat("e", 32) + "-x", false},
		{"short hash", "zstd/abc-x", false},
		{"name starts with dot", "zstd/" + testBase(1, ".x"), false},
		{"empty name", "zstd/" + testBase(1, ""), false},
		{"NUL in name", "zstd/" + testBase(1, "a\x00b"), false},
		{"backslash", "zstd/" + testBase(1, `a\b`), false},
		{"name too long", "zstd/" + testBase(1, strings.Repeat("n", 212)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidKey(tt.key)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidKey(%q) = %v, want ok=%v", tt.key, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrBadKey) {
				t.Fatalf("error %v does not wrap ErrBadKey", err)
			}
		})
	}
}

func TestPutGet(t *testing.T) {
	c := openTest(t, t.TempDir(), 1<<20, newClock())
	tests := []struct {
		name string
		key  string
		data []byte
	}{
		{"empty", testKey(1), nil},
		{"small", testKey(2), []byte("nix-archive-1")},
		{"large", testKey(3), bytes.Repeat([]byte("0123456789"), 50_000)},
		{"other compression", Key("gzip", testBase(2, "item")), []byte("gzipped")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			put(t, c, tt.key, tt.data)
			got, err := get(t, c, tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.data) {
				t.Fatalf("read %d bytes back, want the %d written", len(got), len(tt.data))
			}
		})
	}
	if got, want := c.Size(), int64(13+500_000+7); got != want {
		t.Errorf("Size() = %d, want %d", got, want)
	}
}

func TestGetErrors(t *testing.T) {
	c := openTest(t, t.TempDir(), 1<<20, newClock())
	tests := []struct {
		name string
		key  string
		want error
	}{
		{"missing", testKey(1), ErrNotFound},
		{"bad key", "zstd/../../etc/passwd", ErrBadKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := c.Get(tt.key); !errors.Is(err, tt.want) {
				t.Fatalf("Get(%q) error %v, want %v", tt.key, err, tt.want)
			}
			if _, err := c.Create(tt.key); tt.want == ErrBadKey && !errors.Is(err, ErrBadKey) {
				t.Fatalf("Create(%q) error %v, want %v", tt.key, err, ErrBadKey)
			}
		})
	}
}

// TestUncommittedInvisible checks that an entry is invisible until Commit,
// that Abort leaves no file, and that a replaced entry stays readable until
// the new one commits.
func TestUncommittedInvisible(t *testing.T) {
	dir := t.TempDir()
	c := openTest(t, dir, 1<<20, newClock())
	key := testKey(1)
	w, err := c.Create(key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("half")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Get(key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get before Commit: %v, want ErrNotFound", err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); !errors.Is(err, ErrFinished) {
		t.Fatalf("Commit after Abort: %v, want ErrFinished", err)
	}
	assertNoTmp(t, dir)
	if _, err := os.Stat(filepath.Join(dir, "zstd", testBase(1, "item"))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("aborted entry left a file: %v", err)
	}

	put(t, c, key, []byte("old"))
	w, err = c.Create(key)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	_, _ = w.Write([]byte("new"))
	if got, _ := get(t, c, key); string(got) != "old" {
		t.Fatalf("during replacement got %q, want old", got)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, _ := get(t, c, key); string(got) != "new" {
		t.Fatalf("after replacement got %q, want new", got)
	}
	if c.Size() != 3 || c.Len() != 1 {
		t.Fatalf("after replacement size %d len %d, want 3 and 1", c.Size(), c.Len())
	}
}

func assertNoTmp(t *testing.T, dir string) {
	t.Helper()
	left, err := os.ReadDir(filepath.Join(dir, tmpDir))
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestTooLarge(t *testing.T) {
	dir := t.TempDir()
	c := openTest(t, dir, 10, newClock())
	w, err := c.Create(testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 6)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 6)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Write past limit: %v, want ErrTooLarge", err)
	}
	if err := w.Commit(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Commit after failed Write: %v, want ErrTooLarge", err)
	}
	assertNoTmp(t, dir)
	if c.Len() != 0 {
		t.Fatalf("cache holds %d entries, want 0", c.Len())
	}
}

// TestEvictLRU fills the cache, uses some entries, and checks which ones a
// new entry evicts.
func TestEvictLRU(t *testing.T) {
	tests := []struct {
		name      string
		use       []int // entries read after all four are written
		wantKept  []int
		newSize   int
		wantEvict []int
	}{
		{"oldest goes", nil, []int{2, 3, 4, 5}, 10, []int{1}},
		{"used entry stays", []int{1}, []int{1, 3, 4, 5}, 10, []int{2}},
		{"big entry evicts several", []int{2, 1}, []int{1, 5}, 30, []int{3, 4, 2}},
		{"entry as large as the limit evicts all", nil, []int{5}, 40, []int{1, 2, 3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			dir := t.TempDir()
			c := openTest(t, dir, 40, clk)
			for i := 1; i <= 4; i++ {
				put(t, c, testKey(i), bytes.Repeat([]byte{byte(i)}, 10))
				clk.advance(time.Second)
			}
			for _, i := range tt.use {
				if _, err := get(t, c, testKey(i)); err != nil {
					t.Fatal(err)
				}
			}
			put(t, c, testKey(5), make([]byte, tt.newSize))
			for _, i := range tt.wantKept {
				if !c.Contains(testKey(i)) {
					t.Errorf("entry %d evicted, want kept", i)
				}
			}
			for _, i := range tt.wantEvict {
				if c.Contains(testKey(i)) {
					t.Errorf("entry %d kept, want evicted", i)
				}
				if _, err := os.Stat(c.path(testKey(i))); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("evicted entry %d still on disk: %v", i, err)
				}
			}
			if c.Size() > 40 {
				t.Errorf("Size() = %d over the limit 40", c.Size())
			}
		})
	}
}

// TestEvictWhileReading checks that a reader of an evicted entry still reads
// all of it.
func TestEvictWhileReading(t *testing.T) {
	c := openTest(t, t.TempDir(), 100, newClock())
	want := bytes.Repeat([]byte("a"), 100)
	put(t, c, testKey(1), want)
	r, _, err := c.Get(testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	put(t, c, testKey(2), make([]byte, 100))
	if c.Contains(testKey(1)) {
		t.Fatal("entry 1 not evicted")
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read after eviction: %d bytes, %v; want all 100", len(got), err)
	}
}

// TestReopen checks that a restarted cache finds its entries in the order
// they were last used, drops temporary files and ignores foreign ones.
func TestReopen(t *testing.T) {
	tests := []struct {
		name      string
		limit     int64
		wantKeys  []int // most recent first
		wantSize  int64
		wantGoneN int
	}{
		{"same limit", 40, []int{1, 4, 3, 2}, 40, 0},
		{"smaller limit evicts the least recent", 25, []int{1, 4}, 20, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			clk := newClock()
			c := openTest(t, dir, 40, clk)
			for i := 1; i <= 4; i++ {
				put(t, c, testKey(i), bytes.Repeat([]byte{byte(i)}, 10))
				clk.advance(2 * touchEvery)
			}
			if _, err := get(t, c, testKey(1)); err != nil {
				t.Fatal(err)
			}
			w, err := c.Create(testKey(9)) // a crash mid-write
			if err != nil {
				t.Fatal(err)
			}
			_, _ = w.Write([]byte("partial"))
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "README"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}

			c2 := openTest(t, dir, tt.limit, clk)
			var want []string
			for _, i := range tt.wantKeys {
				want = append(want, testKey(i))
			}
			if got := c2.Keys(); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("keys after reopen:\n got %v\nwant %v", got, want)
			}
			if c2.Size() != tt.wantSize {
				t.Fatalf("Size() = %d, want %d", c2.Size(), tt.wantSize)
			}
			assertNoTmp(t, dir)
			if got, err := get(t, c2, testKey(1)); err != nil || !bytes.Equal(got, bytes.Repeat([]byte{1}, 10)) {
				t.Fatalf("entry 1 after reopen: %q, %v", got, err)
			}
		})
	}
}

func TestClosed(t *testing.T) {
	c := openTest(t, t.TempDir(), 100, newClock())
	put(t, c, testKey(1), []byte("x"))
	w, err := c.Create(testKey(2))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // Close is idempotent
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := c.Get(testKey(1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close: %v", err)
	}
	if _, err := c.Create(testKey(3)); !errors.Is(err, ErrClosed) {
		t.Errorf("Create after Close: %v", err)
	}
	if err := w.Commit(); !errors.Is(err, ErrClosed) {
		t.Errorf("Commit after Close: %v", err)
	}
	if err := c.Remove(testKey(1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Remove after Close: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		dir   string
		limit int64
	}{
		{"zero limit", t.TempDir(), 0},
		{"dir is a file", file, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Open(tt.dir, Options{MaxBytes: tt.limit}); err == nil {
				t.Fatal("Open succeeded")
			}
		})
	}
}

func TestRemove(t *testing.T) {
	c := openTest(t, t.TempDir(), 100, newClock())
	put(t, c, testKey(1), []byte("abc"))
	if err := c.Remove(testKey(1)); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove(testKey(1)); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
	if c.Contains(testKey(1)) || c.Size() != 0 {
		t.Fatalf("after Remove: contains=%v size=%d", c.Contains(testKey(1)), c.Size())
	}
	// A file deleted behind the cache's back reads as missing.
	put(t, c, testKey(2), []byte("abc"))
	if err := os.Remove(c.path(testKey(2))); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Get(testKey(2)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of deleted file: %v", err)
	}
	if c.Size() != 0 {
		t.Fatalf("Size() = %d after the file vanished", c.Size())
	}
}

func FuzzValidKey(f *testing.F) {
	for _, s := range []string{
		"zstd/" + testBase(1, "hello"), "../x", "zstd/..", "none/" + testBase(3, "a/../b"),
		"/etc/passwd", ".tmp/" + testBase(1, "x"), "gzip//" + testBase(1, "x"),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if ValidKey(key) != nil {
			return
		}
		dir := "/cache"
		p := filepath.Join(dir, filepath.FromSlash(key))
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel != key || strings.Count(key, "/") != 1 || strings.HasPrefix(key, ".") {
			t.Fatalf("valid key %q leaves the cache layout: %q", key, p)
		}
		for _, part := range strings.Split(key, "/") {
			if part == "" || part == "." || part == ".." || strings.ContainsAny(part, "\x00\\") {
				t.Fatalf("valid key %q has element %q", key, part)
			}
		}
	})
}
