package nar

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/citest"
)

// The benchmark tree is made once per test binary and removed by TestMain.
var (
	benchTreeOnce sync.Once
	benchTreeDir  string
	benchTreeErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if benchTreeDir != "" {
		os.RemoveAll(benchTreeDir)
	}
	os.Exit(code)
}

// benchTree returns the path of the shared benchmark tree, making it on first
// use.
func benchTree(b *testing.B) string {
	b.Helper()
	benchTreeOnce.Do(func() {
		benchTreeDir, benchTreeErr = os.MkdirTemp("", "nar-bench-")
		if benchTreeErr == nil {
			benchTreeErr = makeBenchTree(filepath.Join(benchTreeDir, "tree"))
		}
	})
	if benchTreeErr != nil {
		b.Fatal(benchTreeErr)
	}
	return filepath.Join(benchTreeDir, "tree")
}

// makeBenchTree writes a deterministic tree of about 320 MB to dir: 4000
// small files (0–16 KiB) in 40 directories, 160 medium ones (0.25–1.25 MiB),
// four large ones (40 MiB), executables and symlinks.
func makeBenchTree(dir string) error {
	rng := rand.New(rand.NewChaCha8([32]byte{'n', 'a', 'r'}))
	buf := make([]byte, 40<<20)
	for i := 0; i < len(buf); i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8 && i+j < len(buf); j++ {
			buf[i+j] = byte(v >> (8 * j))
		}
	}
	var err error
	write := func(p string, size int, mode os.FileMode) {
		off := rng.IntN(len(buf) - size + 1)
		if err == nil {
			err = os.MkdirAll(filepath.Dir(p), 0o755)
		}
		if err == nil {
			err = os.WriteFile(p, buf[off:off+size], mode)
		}
	}
	for i := range 4000 {
		write(filepath.Join(dir, "small", fmt.Sprintf("d%02d", i%40), fmt.Sprintf("f%04d", i)), rng.IntN(16<<10), 0o644)
	}
	for i := range 160 {
		write(filepath.Join(dir, "medium", fmt.Sprintf("m%03d", i)), 256<<10+rng.IntN(1<<20), 0o755)
	}
	for i := range 4 {
		write(filepath.Join(dir, "large", fmt.Sprintf("l%d", i)), 40<<20, 0o644)
	}
	for i := range 100 {
		if err == nil {
			err = os.Symlink(fmt.Sprintf("../medium/m%03d", i), filepath.Join(dir, "small", fmt.Sprintf("link%03d", i)))
		}
	}
	return err
}

// BenchmarkDumpHash measures HashPath (NarHash and NarSize of a large tree)
// and reports its throughput and x-faster-than-nix: the time of
// `nix-store --dump TREE | sha256sum` on the same tree, run alternately with
// ours in the same loop, divided by ours (above 1 means faster than Nix).
// x-faster-than-nix-hash-path compares with Nix's in-process `nix hash path`
// likewise.
func BenchmarkDumpHash(b *testing.B) {
	tree := benchTree(b)
	var sum Sum
	benchVsNix(b, tree, func() (err error) { sum, err = HashPath(tree); return err },
		nixRef{"", `nix-store --dump "$1" | sha256sum`, func(out []byte) error {
			if want := hex.EncodeToString(sum.SHA256[:]); !strings.HasPrefix(string(out), want) {
				return fmt.Errorf("sha256sum of Nix's archive is %s, ours %s", out, want)
			}
			return nil
		}},
		nixRef{"-hash-path", `nix --extra-experimental-features nix-command hash path --type sha256 --base32 "$1"`, func(out []byte) error {
			if got := "sha256:" + strings.TrimSpace(string(out)); got != sum.NarHash() {
				return fmt.Errorf("nix hash path says %s, ours %s", got, sum.NarHash())
			}
			return nil
		}},
	)
}

// BenchmarkDump measures Dump to io.Discard and reports x-faster-than-nix against
// `nix-store --dump TREE > /dev/null`.
func BenchmarkDump(b *testing.B) {
	tree := benchTree(b)
	benchVsNix(b, tree, func() error { return Dump(io.Discard, tree) },
		nixRef{"", `nix-store --dump "$1" > /dev/null`, nil})
}

// BenchmarkDumpHashSerial is HashPath without the hashing goroutine: Dump
// straight into a Hasher, for comparison.
func BenchmarkDumpHashSerial(b *testing.B) {
	tree := benchTree(b)
	benchVsNix(b, tree, func() error { return Dump(NewHasher(), tree) })
}

// nixRef is a reference measurement: a bash script given the tree as $1,
// and a check of its output after the first (untimed) run.
type nixRef struct {
	suffix string
	script string
	check  func(out []byte) error
}

// benchVsNix times ours b.N times, running each reference once after each run
// of ours so that both see the same machine load, then reports each
// reference's throughput (nix_MB/s+suffix) and the ratio of its time to
// ours (x-faster-than-nix+suffix). Without Nix the references are skipped
// (under CI=true they fail).
func benchVsNix(b *testing.B, tree string, ours func() error, refs ...nixRef) {
	sum, err := HashPath(tree) // also warms the page cache
	if err != nil {
		b.Fatal(err)
	}
	if len(refs) > 0 && !haveNix(b) {
		refs = nil
	}
	if err := ours(); err != nil { // untimed: sets what the checks compare with
		b.Fatal(err)
	}
	for _, r := range refs {
		if out := runRef(b, r.script, tree); r.check != nil {
			if err := r.check(out); err != nil {
				b.Fatal(err)
			}
		}
	}
	spent := make([]time.Duration, len(refs))
	b.SetBytes(sum.Size)
	b.ResetTimer()
	for range b.N {
		b.StartTimer()
		if err := ours(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		for i, r := range refs {
			start := time.Now()
			runRef(b, r.script, tree)
			spent[i] += time.Since(start)
		}
	}
	for i, r := range refs {
		b.ReportMetric(float64(sum.Size)*float64(b.N)/spent[i].Seconds()/1e6, "nix_MB/s"+r.suffix)
		b.ReportMetric(spent[i].Seconds()/b.Elapsed().Seconds(), "x-faster-than-nix"+r.suffix)
	}
}

// haveNix reports whether nix-store, the reference, is installed; without
// it the benchmark reports no ratio, and fails under CI=true (citest).
func haveNix(b *testing.B) bool {
	b.Helper()
	if _, err := exec.LookPath("nix-store"); err != nil {
		if citest.Strict() {
			b.Fatal("nix-store not found: install the Debian package nix-bin (CI=true: a missing tool fails the benchmark)")
		}
		b.Log("nix-store not found (Debian package nix-bin): no ratio against Nix; under CI=true this fails the benchmark")
		return false
	}
	return true
}

// runRef runs script with bash (pipefail) and returns its standard output.
func runRef(b *testing.B, script, tree string) []byte {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("bash", "-e", "-o", "pipefail", "-c", script, "bash", tree)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s: %v\n%s", script, err, stderr.Bytes())
	}
	return stdout.Bytes()
}

// BenchmarkReader measures reading (parsing and skipping through) an archive
// held in memory.
func BenchmarkReader(b *testing.B) {
	tree := filepath.Join(b.TempDir(), "tree")
	if err := os.Mkdir(tree, 0o755); err != nil {
		b.Fatal(err)
	}
	makeTree(b, tree, mixedTree)
	a := dumpBytes(b, tree)
	b.SetBytes(int64(len(a)))
	b.ResetTimer()
	for range b.N {
		if err := readAll(NewReader(bytes.NewReader(a))); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHashSmallItem hashes the NAR of a one-line file, what a node does
// for every output of a trivial build, and restores it: with -benchmem, B/op
// shows what each archive allocates (a megabyte per buffer before they were
// pooled).
func BenchmarkHashSmallItem(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "out")
	if err := os.WriteFile(src, []byte("hello\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	var archive bytes.Buffer
	if err := Dump(&archive, src); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := HashPath(src); err != nil {
			b.Fatal(err)
		}
		dst := filepath.Join(dir, fmt.Sprint("restored-", i))
		if err := Restore(bytes.NewReader(archive.Bytes()), dst); err != nil {
			b.Fatal(err)
		}
	}
}
