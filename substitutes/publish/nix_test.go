package publish

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tbfg/tbfg-node/internal/guixtest"
	"github.com/tbfg/tbfg-node/internal/nixtest"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/nar"
	"github.com/tbfg/tbfg-node/substitutes/narinfo"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

// nixBuilder is a private Nix store holding a small built closure, and
// narinfos for it signed as a node would sign them.
type nixBuilder struct {
	nix        *nixtest.Nix
	keys       keys
	closure    []store.Path // the built output first
	narinfoDir string
}

// newNixBuilder has Nix build a derivation whose output is a directory with
// a compressible file, an executable, a symlink and a reference to another
// output, and writes a narinfo for every path of its closure, from what Nix
// says of each, signed with a Guix and a Nix key.
func newNixBuilder(t *testing.T) *nixBuilder {
	n := nixtest.New(t, store.GuixDir)
	expr := filepath.Join(n.Root, "publish.nix")
	writeFile(t, expr, []byte(`let dep = derivation { name = "dep"; system = "x86_64-linux"; builder = "/bin/sh"; args = ["-c" "echo dependency > $out"]; }; in
derivation { name = "published"; system = "x86_64-linux"; builder = "/bin/sh"; args = ["-c" ''
  mkdir -p $out/bin $out/share
  echo ${dep} > $out/share/dep
  i=0; while [ $i -lt 20000 ]; do echo "line $i of a file that compresses well"; i=$((i+1)); done > $out/share/big
  printf '#!/bin/sh\necho hi\n' > $out/bin/hi; chmod +x $out/bin/hi
  ln -s share/big $out/link
'']; }`))
	out := n.Run(t, "nix-store", "--realise", n.Run(t, "nix-instantiate", expr))
	b := &nixBuilder{nix: n, keys: newKeys(t), narinfoDir: filepath.Join(n.Root, "narinfo")}
	for _, line := range strings.Fields(n.Run(t, "nix-store", "--query", "--requisites", out)) {
		p, err := store.GuixDir.ParsePath(line)
		if err != nil {
			t.Fatal(err)
		}
		if line == out {
			b.closure = append([]store.Path{p}, b.closure...)
		} else {
			b.closure = append(b.closure, p)
		}
	}
	if len(b.closure) != 2 {
		t.Fatalf("closure of %s: %v", out, b.closure)
	}
	for _, p := range b.closure {
		b.writeNarinfo(t, b.narinfoDir, b.narinfoOf(t, p))
	}
	return b
}

// narinfoOf makes the signed narinfo of p from Nix's database.
func (b *nixBuilder) narinfoOf(t *testing.T, p store.Path) *narinfo.Narinfo {
	q := func(what string) string { return b.nix.Run(t, "nix-store", "--query", what, string(p)) }
	size, err := strconv.ParseUint(q("--size"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, r := range strings.Fields(q("--references")) {
		refs = append(refs, filepath.Base(r))
	}
	deriver := ""
	if d := q("--deriver"); d != "unknown-deriver" {
		deriver = filepath.Base(d)
	}
	return signedNarinfo(t, b.keys, p, q("--hash"), size, refs, deriver)
}

func (b *nixBuilder) writeNarinfo(t *testing.T, dir string, ni *narinfo.Narinfo) {
	writeFile(t, filepath.Join(dir, ni.StorePath.HashPart()+".narinfo"), mustMarshal(t, ni))
}

// source is a DirSource over the builder's real store directory.
func (b *nixBuilder) source(narinfoDir string) *DirSource {
	return &DirSource{StoreDir: store.GuixDir, RealDir: b.nix.RealStoreDir, NarinfoDir: narinfoDir}
}

// client is a second, empty Nix store that requires signatures and trusts
// only the builder's Nix key.
func (b *nixBuilder) client(t *testing.T) *nixtest.Nix {
	return nixtest.New(t, store.GuixDir, nixtest.WithConf(
		"require-sigs = true",
		"trusted-public-keys = "+b.keys.nix.Public().String(),
		"download-attempts = 1",
	))
}

// copyFrom runs nix copy from the server at url into dst and returns Nix's
// error output and whether it succeeded.
func (b *nixBuilder) copyFrom(dst *nixtest.Nix, url string) (string, bool) {
	cmd := dst.Cmd("nix", "copy", "--from", url+"?store=/gnu/store", string(b.closure[0]))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	return stderr.String(), err == nil
}

// stableSource returns the same narinfo value for a hash part every time,
// as the mesh's Source does, so that the server memoises its answers and
// its fast path serves them.
type stableSource struct {
	Source
	mu   sync.Mutex
	seen map[string]*narinfo.Narinfo
}

func (s *stableSource) Narinfo(ctx context.Context, hashPart string) (*narinfo.Narinfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ni, ok := s.seen[hashPart]; ok {
		return ni, nil
	}
	ni, err := s.Source.Narinfo(ctx, hashPart)
	if err == nil {
		if s.seen == nil {
			s.seen = map[string]*narinfo.Narinfo{}
		}
		s.seen[hashPart] = ni
	}
	return ni, err
}

// requests records the paths a server was asked for.
type requests struct {
	mu    sync.Mutex
	paths map[string]bool
}

func observe(s *Server) *requests {
	r := &requests{paths: map[string]bool{}}
	s.observe = func(req *http.Request) {
		r.mu.Lock()
		r.paths[req.URL.Path] = true
		r.mu.Unlock()
	}
	return r
}

func (r *requests) has(path string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.paths[path]
}

// TestNixSubstitutes has Nix 2.8, with require-sigs and only the builder's
// key trusted, copy a closure from the server, once per compression; and
// refuse it when the Source's NAR or the narinfo's signed part was tampered
// with.
func TestNixSubstitutes(t *testing.T) {
	nixtest.Require(t)
	b := newNixBuilder(t)
	for _, comp := range []string{CompressionNone, CompressionGzip, CompressionZstd} {
		t.Run(comp, func(t *testing.T) { testNixCopy(t, b, comp) })
	}
	t.Run("tampered NAR", func(t *testing.T) { testNixTamperedNAR(t, b) })
	t.Run("tampered narinfo", func(t *testing.T) { testNixTamperedNarinfo(t, b) })
}

func testNixCopy(t *testing.T, b *nixBuilder, comp string) {
	comps := []string{}
	if comp != CompressionNone {
		comps = []string{comp}
	}
	s := newServer(t, &stableSource{Source: b.source(b.narinfoDir)}, func(c *Config) { c.Compressions = comps })
	seen := observe(s)
	url := start(t, s)
	for _, p := range b.closure {
		eventually(t, comp+" NAR of "+string(p)+" in the narinfo", func() bool {
			ni, _ := fetchNarinfo(t, url, p)
			return ni.Files[len(ni.Files)-1].Compression == comp
		})
	}
	dst := b.client(t)
	fast := s.fastAnswers.Load()
	if out, ok := b.copyFrom(dst, url); !ok {
		t.Fatalf("nix copy --from %s failed:\n%s", url, out)
	}
	if s.fastAnswers.Load() == fast {
		t.Error("no request of Nix took the fast path")
	}
	for _, p := range b.closure {
		want, err := nar.HashPath(b.nix.RealPath(p))
		if err != nil {
			t.Fatal(err)
		}
		got, err := nar.HashPath(dst.RealPath(p))
		if err != nil || got != want {
			t.Errorf("%s in the client store: %v, %v; want %v", p, got, err, want)
		}
		narURL := "/nar/" + comp + "/" + p.Base()
		if comp == CompressionNone {
			narURL = "/nar/" + p.Base()
		}
		if !seen.has(narURL) {
			t.Errorf("Nix did not fetch %s", narURL)
		}
	}
	nixtest.Output(t, dst.Cmd("nix-store", "--verify-path", string(b.closure[0])))
}

// testNixTamperedNAR serves NARs with one byte changed: the server cuts the
// transfer, Nix fails, and nothing enters the client's store.
func testNixTamperedNAR(t *testing.T, b *nixBuilder) {
	src := &countingSource{Source: b.source(b.narinfoDir), tamper: func(d []byte) []byte {
		d[len(d)-100] ^= 1
		return d
	}}
	s := newServer(t, src, nil)
	url := start(t, s)
	dst := b.client(t)
	if out, ok := b.copyFrom(dst, url); ok {
		t.Fatalf("nix copy of tampered NARs succeeded:\n%s", out)
	} else {
		t.Logf("nix copy refused, as it should:\n%s", out)
	}
	for _, p := range b.closure {
		if _, err := os.Lstat(dst.RealPath(p)); err == nil {
			t.Errorf("%s entered the client store", p)
		}
	}
	if n := s.cfg.Cache.Len(); n != 0 {
		t.Errorf("tampered NARs cached: %v", s.cfg.Cache.Keys())
	}
}

// testNixTamperedNarinfo drops a reference from the signed part of the top
// narinfo: VerifyGuix and the real Nix both refuse it.
func testNixTamperedNarinfo(t *testing.T, b *nixBuilder) {
	dir := filepath.Join(t.TempDir(), "narinfo")
	for _, p := range b.closure {
		b.writeNarinfo(t, dir, b.narinfoOf(t, p))
	}
	top := b.narinfoOf(t, b.closure[0])
	line := "References: " + strings.Join(top.References, " ") + "\n"
	if len(top.References) == 0 || !bytes.Contains(top.Signed, []byte(line)) {
		t.Fatalf("top narinfo has no references to drop:\n%s", top.Signed)
	}
	top.Signed = bytes.Replace(top.Signed, []byte(line), []byte("References: \n"), 1)
	top.References = nil
	b.writeNarinfo(t, dir, top)

	url := start(t, newServer(t, b.source(dir), nil))
	served, _ := fetchNarinfo(t, url, top.StorePath)
	if st := narinfo.VerifyGuix(served, b.keys.acl()); st == pki.Valid {
		t.Errorf("VerifyGuix of the tampered narinfo: %v", st)
	}
	dst := b.client(t)
	out, ok := b.copyFrom(dst, url)
	if ok || !strings.Contains(out, "signature") {
		t.Fatalf("nix copy of a tampered narinfo: ok=%v\n%s", ok, out)
	}
	if _, err := os.Lstat(dst.RealPath(top.StorePath)); err == nil {
		t.Errorf("%s entered the client store", top.StorePath)
	}
}

// TestNixServedNarinfosPassGuixSubstitute serves a real Nix-built closure
// to the real `guix substitute`, the program guix-daemon runs to check and
// fetch substitutes, trusting the server's key: it must offer every item and
// fetch each with its NarHash checked. Each narinfo also verifies with the
// project's own Guix and Nix verifiers.
func TestNixServedNarinfosPassGuixSubstitute(t *testing.T) {
	nixtest.Require(t)
	guix := guixtest.Require(t)
	b := newNixBuilder(t)
	url := start(t, newServer(t, b.source(b.narinfoDir), nil))
	sub := guixtest.NewSubstituter(t, guix, url, b.keys.acl().Marshal())
	var paths []string
	for _, p := range b.closure {
		served, _ := fetchNarinfo(t, url, p)
		checkOwnSignatures(t, b.keys, b.narinfoOf(t, p), served)
		paths = append(paths, string(p))
	}
	if got := sub.Offered(paths...); !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(paths))) {
		t.Fatalf("guix substitute offers %q, want %q", got, paths)
	}
	for _, p := range b.closure {
		ni := b.narinfoOf(t, p)
		want := fmt.Sprintf("success %s %d", ni.NarHash, ni.NarSize)
		if got, _ := sub.Fetch(string(p)); got != want {
			t.Errorf("%s: guix substitute replied %q, want %q", p, got, want)
		}
	}
}
