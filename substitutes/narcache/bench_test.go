package narcache

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// benchEntry is the size of one entry in the benchmarks: a small NAR.
const benchEntry = 1 << 20

// BenchmarkPut measures Create+Write+Commit of 1 MiB entries against the
// same writes done by hand (temporary file, fsync, rename), interleaved in
// the same run so that disk noise hits both. x-faster-than-raw near 1 means
// the cache adds little.
func BenchmarkPut(b *testing.B) {
	data := bytes.Repeat([]byte("n"), benchEntry)
	dir := b.TempDir()
	c, err := Open(filepath.Join(dir, "cache"), Options{MaxBytes: 64 * benchEntry})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ResetTimer()
	var raw, cached time.Duration
	for i := range b.N {
		raw += timeIt(func() { rawPut(b, dir, i, data) })
		cached += timeIt(func() { put(b, c, testKey(i%128), data) })
	}
	reportRatio(b, cached, raw, benchEntry)
}

// rawPut writes data the way the cache does, without the cache.
func rawPut(b *testing.B, dir string, i int, data []byte) {
	f, err := os.CreateTemp(dir, "raw-*")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, testBase(i%128, "raw"))); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkGet measures Get and a full read of 1 MiB entries from a warm
// cache against os.Open and the same read, interleaved.
func BenchmarkGet(b *testing.B) {
	data := bytes.Repeat([]byte("n"), benchEntry)
	c, err := Open(b.TempDir(), Options{MaxBytes: 64 * benchEntry})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for i := range 16 {
		put(b, c, testKey(i), data)
	}
	buf := make([]byte, 64<<10)
	b.ResetTimer()
	var raw, cached time.Duration
	for i := range b.N {
		raw += timeIt(func() {
			f, err := os.Open(c.path(testKey(i % 16)))
			if err != nil {
				b.Fatal(err)
			}
			drain(b, f, buf)
		})
		cached += timeIt(func() {
			r, _, err := c.Get(testKey(i % 16))
			if err != nil {
				b.Fatal(err)
			}
			drain(b, r, buf)
		})
	}
	reportRatio(b, cached, raw, benchEntry)
}

// BenchmarkGetParallel measures concurrent Gets of small entries, where the
// cache's lock would show.
func BenchmarkGetParallel(b *testing.B) {
	c, err := Open(b.TempDir(), Options{MaxBytes: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for i := range 64 {
		put(b, c, testKey(i), []byte("small entry"))
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 64)
		for i := 0; pb.Next(); i++ {
			r, _, err := c.Get(testKey(i % 64))
			if err != nil {
				b.Error(err)
				return
			}
			drain(b, r, buf)
		}
	})
}

// drain reads r to the end and closes it.
func drain(b *testing.B, r io.ReadCloser, buf []byte) {
	if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf); err != nil {
		b.Fatal(err)
	}
	if err := r.Close(); err != nil {
		b.Fatal(err)
	}
}

// timeIt returns how long f takes.
func timeIt(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

// reportRatio reports the throughput of the cache and of the raw reference,
// each moving b.N entries of size bytes, and raw time / cache time as
// x-faster-than-raw.
func reportRatio(b *testing.B, cache, raw time.Duration, size int) {
	b.StopTimer()
	mb := float64(b.N) * float64(size) / 1e6
	if cache > 0 && raw > 0 {
		b.ReportMetric(mb/cache.Seconds(), "cache-MB/s")
		b.ReportMetric(mb/raw.Seconds(), "raw-MB/s")
		b.ReportMetric(float64(raw)/float64(cache), "x-faster-than-raw")
	}
}
