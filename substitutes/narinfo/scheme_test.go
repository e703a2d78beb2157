package narinfo

import (
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/internal/guiletest"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/nixbase32"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

// randomNarinfo makes a narinfo with random store paths and fields.
func randomNarinfo(r *mrand.Rand, layout Layout) *Narinfo {
	base := func(name string) string {
		h := make([]byte, 20)
		for i := range h {
			h[i] = byte(r.IntN(256))
		}
		return nixbase32.Encode(h) + "-" + name
	}
	digest := make([]byte, 32)
	for i := range digest {
		digest[i] = byte(r.IntN(256))
	}
	n := &Narinfo{
		StorePath: store.Path("/gnu/store/" + base("item")),
		NarHash:   "sha256:" + nixbase32.Encode(digest),
		NarSize:   1 + r.Uint64N(1<<40),
		System:    []string{"", "x86_64-linux", "aarch64-linux"}[r.IntN(3)],
		Layout:    layout,
	}
	for range r.IntN(4) {
		n.References = append(n.References, base(fmt.Sprintf("dep-%d", r.IntN(100))))
	}
	if r.IntN(2) == 0 {
		n.Deriver = base("item.drv")
	}
	for _, c := range []string{"zstd", "lzip", "gzip", "none"}[:1+r.IntN(3)] {
		n.Files = append(n.Files, File{URL: "nar/" + c + "/" + n.StorePath.Base(), Compression: c, FileSize: r.Uint64N(1 << 30)})
	}
	return n
}

// TestSchemeVerifierAgrees writes narinfos signed here with fresh keys in
// every layout, some re-served with new URL blocks, some changed after
// signing, some by a key outside the ACL, and checks that our Scheme
// verifier (testdata/guix-narinfo.scm, written after guix/narinfo.scm and
// guix/pki.scm, on libgcrypt) reaches the same verdict as VerifyGuix, and
// the expected one. TestGuixSubstituteAgrees asks the real Guix.
func TestSchemeVerifierAgrees(t *testing.T) {
	guile := guiletest.Require(t)
	r := mrand.New(mrand.NewPCG(1, 2))
	var keys []*pki.SecretKey
	acl := &pki.ACL{}
	for range 4 {
		k, err := pki.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
		acl.Keys = append(acl.Keys, k.Public)
	}
	stranger, err := pki.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	aclFile := filepath.Join(dir, "acl")
	writeTestFile(t, aclFile, acl.Marshal())
	var files, want []string
	for i := range 60 {
		n := randomNarinfo(r, Layout(i%3))
		k, expect := keys[r.IntN(len(keys))], pki.Valid
		if i%10 == 9 {
			k, expect = stranger, pki.UnauthorizedKey
		}
		if err := SignGuix(n, fmt.Sprintf("host-%d", i), k); err != nil {
			t.Fatal(err)
		}
		text := mustMarshal(t, n)
		switch i % 5 {
		case 1: // re-served with its own URLs
			if n.SetFiles([]File{{URL: "http://198.18.0.1:8761/nar/zstd/x", Compression: "zstd"}}) == nil {
				text = mustMarshal(t, n)
			}
		case 3: // changed after signing
			if expect == pki.Valid {
				text = []byte(strings.Replace(string(text), "NarSize: ", "NarSize: 1", 1))
				expect = pki.HashMismatch
			}
		}
		name := filepath.Join(dir, fmt.Sprintf("%d.narinfo", i))
		writeTestFile(t, name, text)
		if got := VerifyGuix(mustParse(t, text, store.GuixDir), acl); got != expect {
			t.Errorf("%s: VerifyGuix = %v, want %v\n%s", name, got, expect, text)
		}
		files, want = append(files, name), append(want, expect.String())
	}
	out, err := exec.Command(guile, append([]string{"--no-auto-compile", "testdata/guix-narinfo.scm", aclFile}, files...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("guile: %v\n%s", err, out)
	}
	got := strings.Fields(string(out))
	if len(got) != len(want) {
		t.Fatalf("guile printed %d verdicts, want %d:\n%s", len(got), len(want), out)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s: the Scheme verifier says %s, VerifyGuix %s", files[i], got[i], want[i])
		}
	}
}

// TestSchemeVerifierAgreesOnGolden checks the golden files and a narinfo
// from bordeaux.guix.gnu.org with our Scheme verifier and VerifyGuix.
func TestSchemeVerifierAgreesOnGolden(t *testing.T) {
	guile := guiletest.Require(t)
	tests := []struct{ acl, file, want string }{
		{"testdata/bordeaux.guix.gnu.org.pub", bordeaux, "valid-signature"},
		{"testdata/guix-test-key.pub", "testdata/built-guix.narinfo", "valid-signature"},
		{"testdata/guix-test-key.pub", "testdata/built-guix-old.narinfo", "valid-signature"},
		{"testdata/guix-test-key.pub", "testdata/built-nix.narinfo", "valid-signature"},
		{"testdata/acl.example", "testdata/built-guix.narinfo", "unauthorized-key"},
		{"testdata/guix-test-key.pub", "testdata/nix.narinfo", "unsigned"},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			out, err := exec.Command(guile, "--no-auto-compile", "testdata/guix-narinfo.scm", tt.acl, tt.file).CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != tt.want {
				t.Errorf("guile: %v, %s; want %s", err, out, tt.want)
			}
			dir := store.GuixDir
			if tt.file == "testdata/nix.narinfo" {
				dir = store.NixDir
			}
			ours := VerifyGuix(mustParse(t, readFile(t, tt.file), dir), loadACL(t, tt.acl))
			if ours.String() != tt.want {
				t.Errorf("VerifyGuix = %v, want %s", ours, tt.want)
			}
		})
	}
}
