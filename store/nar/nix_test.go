package nar

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/nixtest"
	"github.com/tbfg/tbfg-node/store"
)

// nixTrees are the trees compared with Nix: name → spec and the object under
// the tree's top directory to archive ("" for the whole tree).
var nixTrees = []struct {
	name string
	spec treeSpec
	root string
}{
	{"mixed tree", mixedTree, ""},
	{"empty directory", treeSpec{}, ""},
	{"regular file", treeSpec{"f": "hello\n"}, "f"},
	{"empty file", treeSpec{"f": ""}, "f"},
	{"executable file", treeSpec{"f*": "#!/bin/sh\n"}, "f"},
	{"owner-only executable", treeSpec{"f+": "#!/bin/sh\n"}, "f"},
	{"executable by others only", treeSpec{"f!": "#!/bin/sh\n"}, "f"},
	{"absolute symlink", treeSpec{"l": "->/gnu/store/x"}, "l"},
	{"relative dangling symlink", treeSpec{"l": "->../x/y"}, "l"},
	{"unicode symlink target", treeSpec{"l": "->Äpfel/😀"}, "l"},
	{"nested empty dirs", treeSpec{"a/b/c/": "", "a/d/": "", "a/b/e/": ""}, ""},
	{"large file", treeSpec{"f": strings.Repeat("nar!", 3<<18) + "xyz"}, "f"},
}

// nixDump returns `nix-store --dump path`.
func nixDump(t *testing.T, n *nixtest.Nix, path string) []byte {
	t.Helper()
	cmd := n.CmdNoStore("nix-store", "--dump", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nix-store --dump %s: %v\n%s", path, err, stderr.Bytes())
	}
	return out
}

// TestDumpMatchesNix checks our archive bytes and NarHash against Nix's for
// every kind of tree.
func TestDumpMatchesNix(t *testing.T) {
	n := nixtest.New(t, store.NixDir)
	for _, tt := range nixTrees {
		t.Run(tt.name, func(t *testing.T) {
			top := filepath.Join(t.TempDir(), "top")
			if err := os.Mkdir(top, 0o755); err != nil {
				t.Fatal(err)
			}
			makeTree(t, top, tt.spec)
			path := filepath.Join(top, tt.root)
			want := nixDump(t, n, path)
			if got := dumpBytes(t, path); !bytes.Equal(got, want) {
				t.Fatalf("our archive (%d bytes) differs from nix-store --dump (%d bytes) at byte %d", len(got), len(want), firstDiff(got, want))
			}
			sum, err := HashPath(path)
			if err != nil {
				t.Fatal(err)
			}
			nixHash := n.Run(t, "nix", "hash", "path", "--type", "sha256", "--base32", path)
			if sum.NarHash() != "sha256:"+nixHash || sum.Size != int64(len(want)) {
				t.Fatalf("HashPath = %s, %d bytes; nix hash path = sha256:%s, %d bytes", sum.NarHash(), sum.Size, nixHash, len(want))
			}
		})
	}
}

// TestStoreHashMatchesNix adds the mixed tree to a Nix store and checks that
// the NarHash and NarSize Nix registered equal ours.
func TestStoreHashMatchesNix(t *testing.T) {
	n := nixtest.New(t, store.NixDir)
	top := filepath.Join(t.TempDir(), "tree")
	if err := os.Mkdir(top, 0o755); err != nil {
		t.Fatal(err)
	}
	makeTree(t, top, mixedTree)
	p := n.Run(t, "nix-store", "--add", top)
	hash := n.Run(t, "nix-store", "--query", "--hash", p)
	size, err := strconv.ParseInt(n.Run(t, "nix-store", "--query", "--size", p), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := HashPath(top)
	if err != nil {
		t.Fatal(err)
	}
	if sum.NarHash() != hash || sum.Size != size {
		t.Fatalf("ours %s %d bytes, Nix's store says %s %d bytes", sum.NarHash(), sum.Size, hash, size)
	}
}

// TestRestoreNixArchives restores archives made by Nix and checks that both
// we and Nix archive the result back to the same bytes; and the other way
// round, that Nix restores our archives to trees Nix archives identically.
func TestRestoreNixArchives(t *testing.T) {
	n := nixtest.New(t, store.NixDir)
	for _, tt := range nixTrees {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			top := filepath.Join(tmp, "top")
			if err := os.Mkdir(top, 0o755); err != nil {
				t.Fatal(err)
			}
			makeTree(t, top, tt.spec)
			want := nixDump(t, n, filepath.Join(top, tt.root))

			ours := filepath.Join(tmp, "restored-by-us")
			if err := Restore(bytes.NewReader(want), ours); err != nil {
				t.Fatalf("restoring Nix's archive: %v", err)
			}
			if got := nixDump(t, n, ours); !bytes.Equal(got, want) {
				t.Fatalf("Nix archives our restored tree differently, at byte %d", firstDiff(got, want))
			}

			theirs := filepath.Join(tmp, "restored-by-nix")
			cmd := n.CmdNoStore("nix-store", "--restore", theirs)
			cmd.Stdin = bytes.NewReader(dumpBytes(t, filepath.Join(top, tt.root)))
			nixtest.Output(t, cmd)
			if got := dumpBytes(t, theirs); !bytes.Equal(got, want) {
				t.Fatalf("tree Nix restored from our archive archives differently, at byte %d", firstDiff(got, want))
			}
		})
	}
}

// TestNixRejectsWhatWeReject checks some of our rejections against Nix's own
// reader. (Nix 2.8 restores unsorted directories, which Nix never writes; we
// reject them so that every accepted archive has one canonical form.)
func TestNixRejectsWhatWeReject(t *testing.T) {
	n := nixtest.New(t, store.NixDir)
	for name, parts := range map[string][]any{
		"duplicate": cat(pre, entryOf("a"), entryOf("a"), []any{")"}),
		"dotdot":    cat(pre, entryOf(".."), []any{")"}),
		"slash":     cat(pre, entryOf("a/b"), []any{")"}),
	} {
		t.Run(name, func(t *testing.T) {
			a := enc(parts...)
			if err := readAll(NewReader(bytes.NewReader(a))); err == nil {
				t.Fatal("our reader accepted it")
			}
			cmd := n.CmdNoStore("nix-store", "--restore", filepath.Join(t.TempDir(), "out"))
			cmd.Stdin = bytes.NewReader(a)
			if out, err := cmd.CombinedOutput(); err == nil {
				t.Fatalf("nix-store --restore accepted it: %s", out)
			} else if _, ok := err.(*exec.ExitError); !ok {
				t.Fatal(err)
			}
		})
	}
}

// firstDiff returns the index of the first byte where a and b differ.
func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestRandomTreesMatchNix compares our archives and restores with Nix's on
// random trees: random byte names (including invalid UTF-8 and high bytes,
// where bytewise order matters), nesting, sizes, modes and symlinks.
func TestRandomTreesMatchNix(t *testing.T) {
	n := nixtest.New(t, store.NixDir)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := range 12 {
		top := filepath.Join(t.TempDir(), "top")
		makeRandomTree(t, rng, top, 3)
		want := nixDump(t, n, top)
		if got := dumpBytes(t, top); !bytes.Equal(got, want) {
			t.Fatalf("tree %d (seed %d): our archive differs from Nix's at byte %d", i, seed, firstDiff(got, want))
		}
		ours := filepath.Join(t.TempDir(), "restored")
		if err := Restore(bytes.NewReader(want), ours); err != nil {
			t.Fatalf("tree %d (seed %d): restoring Nix's archive: %v", i, seed, err)
		}
		if got := nixDump(t, n, ours); !bytes.Equal(got, want) {
			t.Fatalf("tree %d (seed %d): Nix archives our restore differently at byte %d", i, seed, firstDiff(got, want))
		}
	}
}

// makeRandomTree creates a random directory at dir with up to depth levels
// below it.
func makeRandomTree(t *testing.T, rng *rand.Rand, dir string, depth int) {
	t.Helper()
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for range rng.IntN(8) {
		name := randomName(rng)
		p := filepath.Join(dir, name)
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		var err error
		switch k := rng.IntN(10); {
		case k < 2 && depth > 0:
			makeRandomTree(t, rng, p, depth-1)
		case k < 4:
			err = os.Symlink(randomName(rng)+"/"+randomName(rng), p)
		default:
			body := make([]byte, rng.IntN(3)*rng.IntN(20000))
			for i := range body {
				body[i] = byte(rng.Uint32())
			}
			mode := os.FileMode(0o600 | rng.IntN(0o200))
			if err = os.WriteFile(p, body, mode); err == nil {
				err = os.Chmod(p, mode)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// randomName returns a valid file name of 1–12 random bytes.
func randomName(rng *rand.Rand) string {
	const some = "aAzZ09._-~ é😀"
	b := make([]byte, 1+rng.IntN(12))
	for i := range b {
		if rng.IntN(4) == 0 {
			b[i] = byte(1 + rng.IntN(255))
		} else {
			b[i] = some[rng.IntN(len(some))]
		}
		if b[i] == '/' {
			b[i] = 'x'
		}
	}
	if s := string(b); s == "." || s == ".." {
		return s + "x"
	}
	return string(b)
}
