package narinfo

import (
	"bytes"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/internal/nixtest"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/nixbase32"
	"github.com/tbfg/tbfg-node/substitutes/nixkey"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

// makeItems adds a small closure to n's store without building anything: top
// refers to two text files. It returns the closure, top first.
func makeItems(t *testing.T, n *nixtest.Nix) []store.Path {
	t.Helper()
	expr := `builtins.toFile "top" "uses ${builtins.toFile "a" "first"} and ${builtins.toFile "b" "second"}"`
	top := strings.Trim(n.Run(t, "nix-instantiate", "--eval", "--read-write-mode", "-E", expr), `"`)
	var closure []store.Path
	for _, line := range strings.Fields(n.Run(t, "nix-store", "--query", "--requisites", top)) {
		p, err := n.StoreDir.ParsePath(line)
		if err != nil {
			t.Fatal(err)
		}
		if string(p) == top {
			closure = append([]store.Path{p}, closure...)
		} else {
			closure = append(closure, p)
		}
	}
	if len(closure) != 3 {
		t.Fatalf("closure of %s: %v", top, closure)
	}
	return closure
}

// writeCache writes a file:// binary cache of paths from n's store the way a
// substitute server of ours would: uncompressed NARs dumped by Nix, narinfos
// made and signed here. It returns the cache's URL.
func writeCache(t *testing.T, n *nixtest.Nix, paths []store.Path, k *nixkey.SecretKey) (string, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cache")
	if err := os.MkdirAll(filepath.Join(dir, "nar"), 0o755); err != nil {
		t.Fatal(err)
	}
	info := "StoreDir: " + string(n.StoreDir) + "\nWantMassQuery: 1\nPriority: 30\n"
	writeTestFile(t, filepath.Join(dir, "nix-cache-info"), []byte(info))
	for _, p := range paths {
		nar, err := n.CmdNoStore("nix-store", "--dump", n.RealPath(p)).Output()
		if err != nil {
			t.Fatalf("nix-store --dump %s: %v", p, err)
		}
		sum := sha256.Sum256(nar)
		hash := "sha256:" + nixbase32.Encode(sum[:])
		file := "nar/" + nixbase32.Encode(sum[:]) + ".nar"
		writeTestFile(t, filepath.Join(dir, file), nar)
		var refs []string
		for _, r := range strings.Fields(n.Run(t, "nix-store", "--query", "--references", string(p))) {
			refs = append(refs, filepath.Base(r))
		}
		ni := &Narinfo{StorePath: p, NarHash: hash, NarSize: uint64(len(nar)), References: refs, Layout: LayoutNix,
			Files: []File{{URL: file, Compression: "none", FileHash: hash, FileSize: uint64(len(nar))}}}
		if err := SignNix(ni, k); err != nil {
			t.Fatal(err)
		}
		writeTestFile(t, filepath.Join(dir, p.HashPart()+".narinfo"), mustMarshal(t, ni))
	}
	return dir, "file://" + dir + "?store=" + string(n.StoreDir)
}

func writeTestFile(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// runErr runs cmd and returns its error output and whether it succeeded.
func runErr(cmd *exec.Cmd) (string, bool) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	return stderr.String(), err == nil
}

// TestNixAcceptsOurCache has Nix 2.8 copy a closure out of a binary cache we
// wrote, with require-sigs on and only our key trusted; and checks that it
// refuses the same cache under another key or with a narinfo changed after
// signing, and that `nix store verify` agrees.
func TestNixAcceptsOurCache(t *testing.T) {
	for _, dir := range []store.Dir{store.GuixDir, store.NixDir} {
		t.Run(string(dir), func(t *testing.T) { testNixAcceptsOurCache(t, dir) })
	}
}

func testNixAcceptsOurCache(t *testing.T, dir store.Dir) {
	src := nixtest.New(t, dir)
	paths := makeItems(t, src)
	key, err := nixkey.Generate("tbfg-test-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := nixkey.Generate("tbfg-test-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	cacheDir, cache := writeCache(t, src, paths, key)
	top := string(paths[0])
	trust := func(k *nixkey.SecretKey) *nixtest.Nix {
		return nixtest.New(t, dir, nixtest.WithConf("require-sigs = true", "trusted-public-keys = "+k.Public().String()))
	}

	dst := trust(key)
	dst.Run(t, "nix", "copy", "--from", cache, top)
	for _, p := range paths {
		want, _ := os.ReadFile(src.RealPath(p))
		if got, err := os.ReadFile(dst.RealPath(p)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s after nix copy: %q, %v", p, got, err)
		}
	}
	verify := append([]string{"store", "verify", "--store", cache, "--option", "trusted-public-keys", key.Public().String()}, pathStrings(paths)...)
	nixtest.Output(t, src.CmdNoStore("nix", verify...))

	verify[6] = stranger.Public().String()
	if out, ok := runErr(src.CmdNoStore("nix", verify...)); ok || !strings.Contains(out, "untrusted") {
		t.Errorf("nix store verify with another key: ok=%v\n%s", ok, out)
	}
	if out, ok := runErr(trust(stranger).Cmd("nix", "copy", "--from", cache, top)); ok || !strings.Contains(out, "signature") {
		t.Errorf("nix copy with another key trusted: ok=%v\n%s", ok, out)
	}

	// Drop a reference from top's narinfo after signing: still well formed,
	// but no longer what the key signed.
	name := filepath.Join(cacheDir, paths[0].HashPart()+".narinfo")
	ni := mustParse(t, readFile(t, name), dir)
	ni.References = ni.References[1:]
	writeTestFile(t, name, mustMarshal(t, ni))
	if got := CheckNix(ni, []nixkey.PublicKey{key.Public()}); got != pki.InvalidSignature {
		t.Errorf("CheckNix on the changed narinfo: %v", got)
	}
	if out, ok := runErr(trust(key).Cmd("nix", "copy", "--from", cache, top)); ok || !strings.Contains(out, "signature") {
		t.Errorf("nix copy of a changed narinfo: ok=%v\n%s", ok, out)
	}
}

func pathStrings(paths []store.Path) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = string(p)
	}
	return out
}

// TestNixWrittenNarinfosVerify has Nix 2.8 write a signed binary cache and
// checks that every narinfo in it parses, prints back byte for byte and
// verifies here with Nix's key, and only with it.
func TestNixWrittenNarinfosVerify(t *testing.T) {
	n := nixtest.New(t, store.GuixDir)
	paths := makeItems(t, n)
	keyFile := filepath.Join(n.Root, "key.sec")
	secret := nixtest.Output(t, n.CmdNoStore("nix", "key", "generate-secret", "--key-name", "nix-made-1"))
	writeTestFile(t, keyFile, []byte(secret))
	sk, err := nixkey.ParseSecretKey([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	other, err := nixkey.Generate("nix-made-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(t.TempDir(), "cache")
	n.Run(t, "nix", "copy", "--to", "file://"+cache+"?store=/gnu/store&secret-key="+keyFile, string(paths[0]))
	names, _ := filepath.Glob(filepath.Join(cache, "*.narinfo"))
	if len(names) != len(paths) {
		t.Fatalf("Nix wrote %d narinfos, want %d", len(names), len(paths))
	}
	for _, name := range names {
		data := readFile(t, name)
		ni := mustParse(t, data, store.GuixDir)
		if out := mustMarshal(t, ni); !bytes.Equal(out, data) {
			t.Errorf("%s re-printed:\n%s\nwant:\n%s", name, out, data)
		}
		if ni.Layout != LayoutNix {
			t.Errorf("%s: layout %v", name, ni.Layout)
		}
		if got := CheckNix(ni, []nixkey.PublicKey{sk.Public()}); got != pki.Valid {
			t.Errorf("%s: CheckNix = %v, want valid", name, got)
		}
		if got := CheckNix(ni, []nixkey.PublicKey{other.Public()}); got != pki.InvalidSignature {
			t.Errorf("%s: CheckNix with another key = %v, want invalid-signature", name, got)
		}
	}
}
