package meshsource

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/substitutes/publish"
)

// BenchmarkNarinfo measures Source.Narinfo, which every /<hash>.narinfo
// request of the substitute server calls, against publish.DirSource reading
// and parsing the same narinfo from a file, measured in the same run. It
// reports ns/op of both and x-faster-than-dirsource (above 1: the
// state-backed source is faster).
func BenchmarkNarinfo(b *testing.B) {
	m := newMesh(b)
	a := m.join(b, "A")
	dep := addText(b, a.store, "dep", "dependency\n")
	p := addText(b, a.store, "item", "contents "+string(dep)+"\n", dep)
	m.hold(b, a, p)
	it := item(b, a, p)
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, p.HashPart()+".narinfo"), []byte(it.Narinfo), 0o644); err != nil {
		b.Fatal(err)
	}
	ref := &publish.DirSource{StoreDir: store.GuixDir, RealDir: a.store.RealDir(), NarinfoDir: dir}
	ctx := context.Background()
	measure := func(src publish.Source) time.Duration {
		const n = 20000
		start := time.Now()
		for range n {
			if _, err := src.Narinfo(ctx, p.HashPart()); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start) / n
	}
	b.ResetTimer()
	var ours, theirs time.Duration
	for b.Loop() {
		ours += measure(a.src)
		theirs += measure(ref)
	}
	b.ReportMetric(float64(ours.Nanoseconds())/float64(b.N), "ns/narinfo")
	b.ReportMetric(float64(theirs.Nanoseconds())/float64(b.N), "dirsource-ns/narinfo")
	b.ReportMetric(float64(theirs)/float64(ours), "x-faster-than-dirsource")
}
