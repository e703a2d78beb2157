package store_test

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/internal/nixtest"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/nixbase32"
)

// TestPathsRecorded checks path computations against paths real Nix 2.8 gave
// for the five bytes "hello" in a /gnu/store layout (nix-store --add,
// --add-fixed sha256, --add-fixed sha1). It runs without Nix;
// TestPathsAgainstNix repeats such checks live.
func TestPathsRecorded(t *testing.T) {
	content := []byte("hello")
	s256 := sha256.Sum256(content)
	s1 := sha1.Sum(content)
	// NAR hash of a regular file holding "hello", as nix-store -q --hash printed it.
	nar := mustNix32(t, "0sg9f58l1jj88w6pdrfdpj5x9b1zrwszk84j81zvby36q9whhhqa")
	tests := []struct {
		name string
		got  func() (store.Path, error)
		want store.Path
	}{
		{"add", func() (store.Path, error) {
			return store.GuixDir.SourcePath("h.txt", store.Hash{Algo: store.SHA256, Digest: nar}, nil, false)
		}, "/gnu/store/1162fr407rbzvvi92ijgcx323q4zvq1n-h.txt"},
		{"add-fixed sha256", func() (store.Path, error) {
			return store.GuixDir.FixedOutputPath("h.txt", store.Flat, store.Hash{Algo: store.SHA256, Digest: s256[:]}, nil)
		}, "/gnu/store/aghppn9x74k0pklqyb7vg2jmzp4qh32m-h.txt"},
		{"make-content-addressed with self-reference", func() (store.Path, error) {
			// nix store make-content-addressed of an output naming itself and a
			// dependency; nix path-info gave its ca field and references.
			ca := store.Hash{Algo: store.SHA256, Digest: mustNix32(t, "1nyj4im5i8gid4gkbdizrhxaw9p6c28ph9isg44fx9wv9vn54qp9")}
			return store.GuixDir.SourcePath("selfref", ca, []store.Path{"/gnu/store/619ng15mhqnwgh61nq35d1yly0c84z1i-dep"}, true)
		}, "/gnu/store/k87mg1g5xwwfplkxpxww0yrh9hb96qbv-selfref"},
		{"add-fixed sha1", func() (store.Path, error) {
			return store.GuixDir.FixedOutputPath("h.txt", store.Flat, store.Hash{Algo: store.SHA1, Digest: s1[:]}, nil)
		}, "/gnu/store/5qigfiz3xgr4k3ba5mp7b1xb5260kpqp-h.txt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.got()
			if err != nil || got != tt.want {
				t.Errorf("got %s, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestPathErrors(t *testing.T) {
	h := store.SHA256Of(nil)
	tests := []struct {
		name string
		err  func() error
		want error
	}{
		{"bad name", func() error { _, err := store.GuixDir.TextPath("a b", h, nil); return err }, store.ErrBadName},
		{"bad dir", func() error { _, err := store.Dir("gnu").TextPath("a", h, nil); return err }, store.ErrBadDir},
		{"foreign ref", func() error {
			_, err := store.GuixDir.TextPath("a", h, []store.Path{"/nix/store/1162fr407rbzvvi92ijgcx323q4zvq1n-h.txt"})
			return err
		}, store.ErrBadReference},
		{"flat with refs", func() error {
			_, err := store.GuixDir.FixedOutputPath("a", store.Flat, h, []store.Path{"/gnu/store/1162fr407rbzvvi92ijgcx323q4zvq1n-h.txt"})
			return err
		}, store.ErrBadReference},
		{"text sha1", func() error {
			_, err := store.GuixDir.TextPath("a", store.Hash{Algo: store.SHA1, Digest: make([]byte, 20)}, nil)
			return err
		}, store.ErrBadHash},
		{"short digest", func() error {
			_, err := store.GuixDir.OutputPath("out", store.Hash{Algo: store.SHA256, Digest: make([]byte, 20)}, "a")
			return err
		}, store.ErrBadHash},
		{"unknown algo", func() error { _, err := store.ParseHexHash("sha3", "00"); return err }, store.ErrBadHash},
		{"upper hex", func() error { _, err := store.ParseHexHash(store.SHA1, strings.Repeat("A", 40)); return err }, store.ErrBadHash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.err(); !errors.Is(err, tt.want) {
				t.Errorf("error = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestPathsAgainstNix adds files and trees to real Nix stores (Guix and Nix
// layouts) and checks that our computation gives the paths Nix chose.
func TestPathsAgainstNix(t *testing.T) {
	for _, dir := range []store.Dir{store.GuixDir, store.NixDir} {
		t.Run(string(dir), func(t *testing.T) { testPathsAgainstNix(t, nixtest.New(t, dir)) })
	}
}

func testPathsAgainstNix(t *testing.T, n *nixtest.Nix) {
	file, tree := writeInputs(t, n.Root)
	content, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	d := n.StoreDir
	narHash := func(p string) store.Hash { return parseNix32Hash(t, n.Run(t, "nix-store", "-q", "--hash", p)) }
	hashPath := func(algo, p string) store.Hash {
		return mustHex(t, store.HashAlgo(algo), n.Run(t, "nix", "hash", "path", "--type", algo, "--base16", p))
	}
	fileHash := func(algo string) store.Hash {
		return mustHex(t, store.HashAlgo(algo), n.Run(t, "nix", "hash", "file", "--type", algo, "--base16", file))
	}
	type nixCase struct {
		name string
		nix  []string                                 // the Nix command that adds the item
		ours func(nixPath string) (store.Path, error) // our computation of its path
	}
	tests := []nixCase{
		{"add file", []string{"nix-store", "--add", file}, func(p string) (store.Path, error) {
			return d.SourcePath("file.txt", narHash(p), nil, false)
		}},
		{"add tree", []string{"nix-store", "--add", tree}, func(p string) (store.Path, error) {
			return d.SourcePath("tree", narHash(p), nil, false)
		}},
		{"fixed flat sha256", []string{"nix-store", "--add-fixed", "sha256", file}, func(string) (store.Path, error) {
			return d.FixedOutputPath("file.txt", store.Flat, store.SHA256Of(content), nil)
		}},
	}
	for _, algo := range []string{"md5", "sha1", "sha512"} {
		tests = append(tests, nixCase{"fixed flat " + algo, []string{"nix-store", "--add-fixed", algo, file}, func(string) (store.Path, error) {
			return d.FixedOutputPath("file.txt", store.Flat, fileHash(algo), nil)
		}})
	}
	for _, algo := range []string{"sha1", "sha256", "sha512"} {
		tests = append(tests, nixCase{"fixed recursive " + algo, []string{"nix-store", "--add-fixed", "--recursive", algo, tree}, func(string) (store.Path, error) {
			return d.FixedOutputPath("tree", store.Recursive, hashPath(algo, tree), nil)
		}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := n.Run(t, tt.nix[0], tt.nix[1:]...)
			got, err := tt.ours(want)
			if err != nil || string(got) != want {
				t.Errorf("computed %s, %v; Nix made %s", got, err, want)
			}
		})
	}
	t.Run("text with references", func(t *testing.T) { testTextPath(t, n, file) })
	t.Run("source with self-reference", func(t *testing.T) { testSelfReference(t, n) })
}

// testSelfReference has Nix build an output that names itself and a
// dependency, rewrite it with nix store make-content-addressed into a source
// path with a self-reference, and recomputes that path from what nix
// path-info says of it.
func testSelfReference(t *testing.T, n *nixtest.Nix) {
	expr := filepath.Join(n.Root, "self.nix")
	must(t, os.WriteFile(expr, []byte(`let dep = derivation { name = "dep"; system = "x86_64-linux"; builder = "/bin/sh"; args = ["-c" "echo dep > $out"]; }; in
derivation { name = "selfref"; system = "x86_64-linux"; builder = "/bin/sh"; args = ["-c" "mkdir $out; echo $out > $out/self; echo ${dep} > $out/dep"]; }`), 0o644))
	out := n.Run(t, "nix-store", "--realise", n.Run(t, "nix-instantiate", expr))
	var rewritten struct{ Rewrites map[string]string }
	must(t, json.Unmarshal([]byte(n.Run(t, "nix", "store", "make-content-addressed", "--json", out)), &rewritten))
	want := rewritten.Rewrites[out]
	var info []struct {
		CA         string
		References []store.Path
	}
	must(t, json.Unmarshal([]byte(n.Run(t, "nix", "path-info", "--json", want)), &info))
	if len(info) != 1 || !strings.HasPrefix(info[0].CA, "fixed:r:sha256:") {
		t.Fatalf("path-info of %s: %+v", want, info)
	}
	var refs []store.Path
	self := false
	for _, r := range info[0].References {
		if string(r) == want {
			self = true
		} else {
			refs = append(refs, r)
		}
	}
	if !self || len(refs) != 1 {
		t.Fatalf("references of %s: %v, want itself and one more", want, info[0].References)
	}
	ca := parseNix32Hash(t, strings.TrimPrefix(info[0].CA, "fixed:r:"))
	got, err := n.StoreDir.SourcePath(store.Path(want).Name(), ca, refs, true)
	if err != nil || string(got) != want {
		t.Errorf("computed %s, %v; Nix made %s", got, err, want)
	}
}

// testTextPath has Nix write builtins.toFile items, one referring to another
// text item and to a source item, and recomputes their paths.
func testTextPath(t *testing.T, n *nixtest.Nix, file string) {
	const text = `see ${builtins.toFile "a" "x\n"} and ${%s}`
	expr := `builtins.toFile "t" "` + strings.ReplaceAll(text, "%s", "/."+file) + `"`
	want := strings.Trim(n.Run(t, "nix-instantiate", "--eval", "--read-write-mode", "-E", expr), `"`)
	var refs []store.Path
	for _, r := range strings.Fields(n.Run(t, "nix-store", "-q", "--references", want)) {
		refs = append(refs, store.Path(r))
	}
	if len(refs) != 2 {
		t.Fatalf("references of %s: %v, want two", want, refs)
	}
	body, err := os.ReadFile(n.RealPath(store.Path(want)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := n.StoreDir.TextPath("t", store.SHA256Of(body), []store.Path{refs[1], refs[0], refs[1]})
	if err != nil || string(got) != want {
		t.Errorf("computed %s, %v; Nix made %s", got, err, want)
	}
}

// writeInputs makes a regular file and a tree with a nested directory, an
// executable, a symlink and an empty directory.
func writeInputs(t *testing.T, root string) (file, tree string) {
	t.Helper()
	file = filepath.Join(root, "in", "file.txt")
	tree = filepath.Join(root, "in", "tree")
	must(t, os.MkdirAll(filepath.Join(tree, "sub", "empty"), 0o755))
	must(t, os.WriteFile(file, []byte("hello, store\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(tree, "sub", "run"), []byte("#!/bin/sh\n"), 0o755))
	must(t, os.WriteFile(filepath.Join(tree, "a"), []byte("a"), 0o644))
	must(t, os.Symlink("sub/run", filepath.Join(tree, "link")))
	return file, tree
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustNix32(t *testing.T, s string) []byte {
	t.Helper()
	b, err := nixbase32.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parseNix32Hash(t *testing.T, s string) store.Hash {
	t.Helper()
	algo, digest, ok := strings.Cut(s, ":")
	if !ok || algo != "sha256" {
		t.Fatalf("hash %q: want sha256:<nix-base32>", s)
	}
	return store.Hash{Algo: store.SHA256, Digest: mustNix32(t, digest)}
}

func mustHex(t *testing.T, algo store.HashAlgo, s string) store.Hash {
	t.Helper()
	h, err := store.ParseHexHash(algo, s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
