package publish

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/tbfg/tbfg-node/internal/wrkbench"
)

// BenchmarkServerVsNginx measures, with wrk, narinfo requests per second and
// NAR throughput (uncompressed and zstd) from the server over an in-memory
// Source, and from nginx serving the same bytes as static files in the same
// run, and reports the ratio of each pair. Targets: narinfo ratio ≥ 1, nar
// ratio ≥ 0.8. integration's BenchmarkNodeVsNginx measures the same through
// a running node.
//
//	go test -run '^$' -bench ServerVsNginx ./substitutes/publish/
//
// Each wrk run lasts wrkbench.Duration, with 2 threads and 32 connections
// for narinfos, 8 for NARs; the NAR is 16 MiB.
func BenchmarkServerVsNginx(b *testing.B) {
	wrk := wrkbench.RequireTool(b, "wrk", "wrk")
	nginxBin := wrkbench.RequireTool(b, "nginx", "nginx")
	k := newKeys(b)
	it := makeItem(b, k, "bench-item", map[string][]byte{"data": benchData(16 << 20)})
	mem := NewMemSource()
	mem.Add(it.ni, it.nar)
	s := newServer(b, mem, func(c *Config) { c.Logger = nil })
	ours := start(b, s)
	p := it.ni.StorePath
	eventually(b, "compressed NARs", func() bool {
		ni, _ := fetchNarinfo(b, ours, p)
		return len(ni.Files) == 3
	})
	targets := []wrkbench.Target{
		{Name: "narinfo", Path: "/" + p.HashPart() + ".narinfo", Conns: 32},
		{Name: "nar", Path: "/nar/" + p.Base(), Conns: 8},
		{Name: "zstd", Path: "/nar/zstd/" + p.Base(), Conns: 8},
	}
	www := filepath.Join(b.TempDir(), "www")
	sizes := wrkbench.Mirror(b, ours, www, targets[0].Path, targets[1].Path, targets[2].Path)
	targets[1].Size, targets[2].Size = sizes[targets[1].Path], sizes[targets[2].Path]
	wrkbench.Compare(b, wrk, ours, wrkbench.StartNginx(b, nginxBin, www), targets)
}

// benchData is n bytes that compress about as well as a typical package: a
// mix of text and random bytes.
func benchData(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	var buf bytes.Buffer
	for i := 0; buf.Len() < n; i++ {
		if i%4 == 0 {
			for range 512 {
				buf.WriteByte(byte(r.Uint32()))
			}
		} else {
			fmt.Fprintf(&buf, "line %d of /gnu/store/some-package/share/doc/file.txt\n", i)
		}
	}
	return buf.Bytes()[:n]
}
