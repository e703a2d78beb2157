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
// ratio ≥ 1 (cached NARs go out with sendfile, like nginx's), zstd ≥ 0.8. integration's BenchmarkNodeVsNginx measures the same through
// a running node.
//
//	go test -run '^$' -bench ServerVsNginx ./substitutes/publish/
//
// Each wrk run lasts wrkbench.Duration, with 2 threads and 32 connections
// for narinfos and the small NAR (nar-64k: a 64 KiB file, where the cost
// per request shows), 8 for the 16 MiB NAR and its zstd variant. The
// server runs in the benchmark's process, so each target also reports its
// CPU time per request (self-cpu-us/req), steadier than the rates on a
// loaded machine.
func BenchmarkServerVsNginx(b *testing.B) {
	wrk := wrkbench.RequireTool(b, "wrk", "wrk")
	nginxBin := wrkbench.RequireTool(b, "nginx", "nginx")
	k := newKeys(b)
	it := makeItem(b, k, "bench-item", map[string][]byte{"data": benchData(16 << 20)})
	small := makeItem(b, k, "bench-small", map[string][]byte{"data": benchData(64 << 10)})
	mem := NewMemSource()
	mem.Add(it.ni, it.nar)
	mem.Add(small.ni, small.nar)
	s := newServer(b, mem, func(c *Config) { c.Logger = nil })
	ours := start(b, s)
	p, sp := it.ni.StorePath, small.ni.StorePath
	eventually(b, "compressed NARs", func() bool {
		ni, _ := fetchNarinfo(b, ours, p)
		sni, _ := fetchNarinfo(b, ours, sp)
		return len(ni.Files) == 3 && len(sni.Files) == 3
	})
	targets := []wrkbench.Target{
		{Name: "narinfo", Path: "/" + p.HashPart() + ".narinfo", Conns: 32},
		{Name: "nar", Path: "/nar/" + p.Base(), Conns: 8},
		{Name: "zstd", Path: "/nar/zstd/" + p.Base(), Conns: 8},
		{Name: "nar-64k", Path: "/nar/" + sp.Base(), Conns: 32},
	}
	www := filepath.Join(b.TempDir(), "www")
	var paths []string
	for _, t := range targets {
		paths = append(paths, t.Path)
	}
	sizes := wrkbench.Mirror(b, ours, www, paths...)
	for i := range targets {
		targets[i].InProcess = true
		if i > 0 {
			targets[i].Size = sizes[targets[i].Path]
		}
	}
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
