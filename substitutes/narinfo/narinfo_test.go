package narinfo

import (
	"bytes"
	"crypto/rand"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/substitutes/nixkey"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

// Regenerate the golden files of TestBuiltGolden with
//
//	go test ./substitutes/narinfo -run TestBuiltGolden -update
var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const bordeaux = "testdata/hello-2.12.2.narinfo"

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func mustParse(t testing.TB, data []byte, dir store.Dir) *Narinfo {
	t.Helper()
	n, err := Parse(data, dir)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, data)
	}
	return n
}

func mustMarshal(t testing.TB, n *Narinfo) []byte {
	t.Helper()
	out, err := n.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	return out
}

func loadACL(t testing.TB, name string) *pki.ACL {
	t.Helper()
	acl, err := pki.ParseACL(readFile(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return acl
}

func TestParseBordeaux(t *testing.T) {
	data := readFile(t, bordeaux)
	n := mustParse(t, data, store.GuixDir)
	want := &Narinfo{
		StorePath: "/gnu/store/cs56i9digj9qg1bd383cmxc6xrfpdn9n-hello-2.12.2",
		NarHash:   "sha256:0qhasy0w9w9mfv0vacgzymxl4nww8cslyza5x2ci42v7i2b13lyl",
		NarSize:   282616,
		References: []string{"cs56i9digj9qg1bd383cmxc6xrfpdn9n-hello-2.12.2",
			"m2vhzr0dy352cn59sgcklcaykprrr4j6-gcc-14.3.0-lib", "yj053cys0724p7vs9kir808x7fivz17m-glibc-2.41"},
		Deriver: "rxw8g87bf61bwbagfq38sp5xwy28jb5d-hello-2.12.2.drv",
		System:  "x86_64-linux",
		Files: []File{
			{URL: "nar/lzip/cs56i9digj9qg1bd383cmxc6xrfpdn9n-hello-2.12.2", Compression: "lzip", FileSize: 68076},
			{URL: "nar/zstd/cs56i9digj9qg1bd383cmxc6xrfpdn9n-hello-2.12.2", Compression: "zstd", FileSize: 73413},
		},
		Signatures: n.Signatures,
		Layout:     LayoutGuix,
		Signed:     data[:bytes.Index(data, []byte("Signature:"))],
	}
	if !reflect.DeepEqual(n, want) {
		t.Errorf("Parse:\n got %+v\nwant %+v", n, want)
	}
	if len(n.Signatures) != 1 || !strings.HasPrefix(n.Signatures[0], "1;bayfront;KHNpZ25hdHVyZSAK") {
		t.Errorf("Signatures = %q", n.Signatures)
	}
	if got := mustMarshal(t, n); !bytes.Equal(got, data) {
		t.Errorf("re-printed narinfo differs:\n%s", got)
	}
}

// TestBordeauxVerifies checks the real narinfo against the real key, also
// after its URL blocks are rewritten, and that any changed byte of its signed
// part breaks it.
func TestBordeauxVerifies(t *testing.T) {
	data := readFile(t, bordeaux)
	acl := loadACL(t, "testdata/bordeaux.guix.gnu.org.pub")
	n := mustParse(t, data, store.GuixDir)
	if got := VerifyGuix(n, acl); got != pki.Valid {
		t.Fatalf("VerifyGuix = %v, want valid", got)
	}
	if got := VerifyGuix(n, loadACL(t, "testdata/acl.example")); got != pki.UnauthorizedKey {
		t.Errorf("with another ACL: %v, want unauthorized-key", got)
	}
	if err := n.SetFiles([]File{{URL: "http://198.18.0.1:8761/nar/zstd/x", Compression: "zstd"}}); err != nil {
		t.Fatal(err)
	}
	again := mustParse(t, mustMarshal(t, n), store.GuixDir)
	if got := VerifyGuix(again, acl); got != pki.Valid || again.Files[0].URL != "http://198.18.0.1:8761/nar/zstd/x" {
		t.Errorf("after SetFiles: %v, files %+v", got, again.Files)
	}
	signed := len(n.Signed)
	for i := 0; i < signed; i++ {
		changed := bytes.Clone(data)
		changed[i] ^= 0x01
		m, err := Parse(changed, store.GuixDir)
		if err == nil && VerifyGuix(m, acl) == pki.Valid {
			t.Errorf("byte %d (%q) changed: still valid", i, data[i])
		}
	}
}

func TestParseNixWritten(t *testing.T) {
	data := readFile(t, "testdata/nix.narinfo")
	n := mustParse(t, data, store.NixDir)
	if n.Layout != LayoutNix || len(n.Files) != 1 || n.Files[0].FileHash == "" || n.CA == "" || len(n.Sigs) != 1 {
		t.Errorf("Parse: %+v", n)
	}
	if got := mustMarshal(t, n); !bytes.Equal(got, data) {
		t.Errorf("re-printed narinfo differs:\n%s", got)
	}
	pub, err := nixkey.ParsePublicKey(readFile(t, "testdata/nix-test-key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if got := CheckNix(n, []nixkey.PublicKey{pub}); got != pki.Valid {
		t.Errorf("CheckNix = %v, want valid", got)
	}
	if got := VerifyGuix(n, loadACL(t, "testdata/acl.example")); got != pki.Unsigned {
		t.Errorf("VerifyGuix = %v, want unsigned", got)
	}
}

// fixture is a store item's narinfo built from fields.
func fixture() *Narinfo {
	return &Narinfo{
		StorePath:  "/gnu/store/cs56i9digj9qg1bd383cmxc6xrfpdn9n-hello-2.12.2",
		NarHash:    "sha256:0qhasy0w9w9mfv0vacgzymxl4nww8cslyza5x2ci42v7i2b13lyl",
		NarSize:    282616,
		References: []string{"yj053cys0724p7vs9kir808x7fivz17m-glibc-2.41", "cs56i9digj9qg1bd383cmxc6xrfpdn9n-hello-2.12.2"},
		Deriver:    "rxw8g87bf61bwbagfq38sp5xwy28jb5d-hello-2.12.2.drv",
		System:     "x86_64-linux",
		Files: []File{
			{URL: "nar/zstd/cs56i9digj9qg1bd383cmxc6xrfpdn9n-hello-2.12.2", Compression: "zstd", FileSize: 73413},
			{URL: "nar/cs56i9digj9qg1bd383cmxc6xrfpdn9n-hello-2.12.2", Compression: "none"},
		},
	}
}

// testKeys are fixed keys kept in testdata so that the golden files are
// reproducible (Guix's signatures use RFC 6979, Nix's are ed25519: both
// deterministic).
func testKeys(t testing.TB) (*pki.SecretKey, *nixkey.SecretKey) {
	t.Helper()
	const guixFile = "testdata/guix-test-key.sec"
	data, err := os.ReadFile(guixFile)
	if errors.Is(err, os.ErrNotExist) && *update {
		k, err := pki.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		data = k.Marshal()
		for name, content := range map[string][]byte{guixFile: data, "testdata/guix-test-key.pub": k.Public.Marshal()} {
			if err := os.WriteFile(name, content, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	} else if err != nil {
		t.Fatal(err)
	}
	gk, err := pki.ParseSecretKey(data)
	if err != nil {
		t.Fatal(err)
	}
	nk, err := nixkey.ParseSecretKey(readFile(t, "testdata/nix-test-key.sec"))
	if err != nil {
		t.Fatal(err)
	}
	return gk, nk
}

// TestBuiltGolden signs a narinfo built from fields in each layout with both
// kinds of keys and compares the result with the golden files; then checks
// that each golden file parses, prints back byte for byte and verifies.
func TestBuiltGolden(t *testing.T) {
	gk, nk := testKeys(t)
	acl := &pki.ACL{Keys: []pki.PublicKey{gk.Public}}
	pub := []nixkey.PublicKey{nk.Public()}
	for _, layout := range []Layout{LayoutGuix, LayoutGuixOld, LayoutNix} {
		t.Run(layout.String(), func(t *testing.T) {
			n := fixture()
			n.Layout = layout
			if err := SignNix(n, nk); err != nil {
				t.Fatal(err)
			}
			if err := SignGuix(n, "test-host", gk); err != nil {
				t.Fatal(err)
			}
			got := mustMarshal(t, n)
			golden := filepath.Join("testdata", "built-"+layout.String()+".narinfo")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if want := readFile(t, golden); !bytes.Equal(got, want) {
				t.Fatalf("%s differs; got:\n%s", golden, got)
			}
			back := mustParse(t, got, store.GuixDir)
			if back.Layout != layout {
				t.Errorf("parsed layout %v, want %v", back.Layout, layout)
			}
			if again := mustMarshal(t, back); !bytes.Equal(again, got) {
				t.Errorf("re-printed:\n%s", again)
			}
			if g, ok := VerifyGuix(back, acl), VerifyNix(back, pub); g != pki.Valid || !ok {
				t.Errorf("VerifyGuix = %v, VerifyNix = %v", g, ok)
			}
		})
	}
}

func TestSetFiles(t *testing.T) {
	gk, _ := testKeys(t)
	acl := &pki.ACL{Keys: []pki.PublicKey{gk.Public}}
	old := mustParse(t, readFile(t, "testdata/built-guix-old.narinfo"), store.GuixDir)
	if err := old.SetFiles(nil); !errors.Is(err, ErrSignedFiles) {
		t.Errorf("SetFiles on the old layout: %v, want ErrSignedFiles", err)
	}
	for _, name := range []string{"testdata/built-guix.narinfo", bordeaux} {
		n := mustParse(t, readFile(t, name), store.GuixDir)
		signed := bytes.Clone(n.Signed)
		files := []File{{URL: "a", Compression: "none"}, {URL: "b", Compression: "gzip", FileSize: 3}}
		if err := n.SetFiles(files); err != nil {
			t.Fatal(err)
		}
		out := mustMarshal(t, n)
		if !bytes.HasPrefix(out, signed) || !bytes.Contains(out, []byte("Signature: 1;")) || !bytes.Contains(out, []byte("\nURL: a\nCompression: none\nURL: b\nCompression: gzip\nFileSize: 3\n")) {
			t.Errorf("%s after SetFiles:\n%s", name, out)
		}
		if name != bordeaux {
			if got := VerifyGuix(mustParse(t, out, store.GuixDir), acl); got != pki.Valid {
				t.Errorf("%s after SetFiles: %v", name, got)
			}
		}
	}
}

// TestSignedFieldsAreFrozen checks that, once signed, changing a field does
// not silently change what is printed or verified, and that clearing Signed
// re-signs the new fields.
func TestSignedFieldsAreFrozen(t *testing.T) {
	gk, _ := testKeys(t)
	acl := &pki.ACL{Keys: []pki.PublicKey{gk.Public}}
	n := fixture()
	if err := SignGuix(n, "h", gk); err != nil {
		t.Fatal(err)
	}
	before := mustMarshal(t, n)
	n.System = "aarch64-linux"
	if after := mustMarshal(t, n); !bytes.Equal(before, after) {
		t.Errorf("a change under Signed was printed:\n%s", after)
	}
	n.Signed = nil
	if got := VerifyGuix(n, acl); got != pki.HashMismatch {
		t.Errorf("changed fields with the old signature: %v, want hash-mismatch", got)
	}
	if err := SignGuix(n, "h", gk); err != nil {
		t.Fatal(err)
	}
	back := mustParse(t, mustMarshal(t, n), store.GuixDir)
	if back.System != "aarch64-linux" || VerifyGuix(back, acl) != pki.Valid {
		t.Errorf("re-signed: system %q, %v", back.System, VerifyGuix(back, acl))
	}
}

func TestCheckNix(t *testing.T) {
	_, nk := testKeys(t)
	other, err := nixkey.Generate(nk.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := nixkey.Generate("stranger-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	signed := func(change func(n *Narinfo)) *Narinfo {
		n := fixture()
		if err := SignNix(n, nk); err != nil {
			t.Fatal(err)
		}
		change(n)
		return n
	}
	trusted := []nixkey.PublicKey{nk.Public()}
	tests := []struct {
		name string
		n    *Narinfo
		keys []nixkey.PublicKey
		want pki.Status
	}{
		{"valid", signed(func(*Narinfo) {}), trusted, pki.Valid},
		{"valid among others", signed(func(n *Narinfo) { n.Sigs = append([]string{stranger.Sign("x")}, n.Sigs...) }), trusted, pki.Valid},
		{"references reordered", signed(func(n *Narinfo) { n.References[0], n.References[1] = n.References[1], n.References[0] }), trusted, pki.Valid},
		{"unsigned", fixture(), trusted, pki.Unsigned},
		{"untrusted name", signed(func(*Narinfo) {}), []nixkey.PublicKey{stranger.Public()}, pki.UnauthorizedKey},
		{"same name, other key", signed(func(*Narinfo) {}), []nixkey.PublicKey{other.Public()}, pki.InvalidSignature},
		{"changed size", signed(func(n *Narinfo) { n.NarSize++ }), trusted, pki.InvalidSignature},
		{"dropped reference", signed(func(n *Narinfo) { n.References = n.References[:1] }), trusted, pki.InvalidSignature},
		{"truncated", signed(func(n *Narinfo) { n.Sigs[0] = n.Sigs[0][:30] }), trusted, pki.CorruptSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CheckNix(tt.n, tt.keys); got != tt.want {
				t.Errorf("CheckNix = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSignNixReplacesSameName(t *testing.T) {
	_, nk := testKeys(t)
	n := fixture()
	n.Sigs = []string{nk.Name + ":stale", "other-1:keep"}
	if err := SignNix(n, nk); err != nil {
		t.Fatal(err)
	}
	if len(n.Sigs) != 2 || n.Sigs[0] != "other-1:keep" || !strings.HasPrefix(n.Sigs[1], nk.Name+":") {
		t.Errorf("Sigs = %q", n.Sigs)
	}
}

func TestParseErrors(t *testing.T) {
	const (
		sp   = "StorePath: /gnu/store/cs56i9digj9qg1bd383cmxc6xrfpdn9n-hello-2.12.2\n"
		nh   = "NarHash: sha256:0qhasy0w9w9mfv0vacgzymxl4nww8cslyza5x2ci42v7i2b13lyl\n"
		ns   = "NarSize: 10\n"
		url  = "URL: nar/x\n"
		good = sp + nh + ns + url
	)
	tests := []struct{ name, text, want string }{
		{"no colon", sp + "NarHash sha256:x\n", "line 2: want \"Name: value\""},
		{"no space", sp + "NarSize:10\n", "line 2: want \"Name: value\""},
		{"empty line", sp + "\n" + nh, "line 2: empty line"},
		{"other store", "StorePath: /nix/store/cs56i9digj9qg1bd383cmxc6xrfpdn9n-hello\n", "line 1: StorePath:"},
		{"bad hash", sp + "NarHash: sha256:zzz\n", "line 2: NarHash:"},
		{"md5 hash", sp + "NarHash: md5:abc\n", "line 2: NarHash: \"md5:abc\": want sha256:<nix-base32>"},
		{"bad size", sp + nh + "NarSize: -1\n", "line 3: NarSize: \"-1\" is not a size"},
		{"zero size", sp + nh + "NarSize: 0\n", "line 3: NarSize: size 0"},
		{"bad reference", good + "References: foo\n", "line 5: References: \"foo\""},
		{"bad deriver", good + "Deriver: /gnu/store/x.drv\n", "line 5: Deriver:"},
		{"twice", good + ns, "line 5: NarSize: repeats the field of line 3"},
		{"compression first", sp + "Compression: xz\n", "line 2: Compression: no URL line opens its block"},
		{"block field twice", good + "FileSize: 3\nFileSize: 4\n", "line 6: FileSize: repeats the field of the URL block of line 4"},
		{"empty URL", sp + "URL: \n", "line 2: URL: empty value"},
		{"signed field after signature", good + "Signature: 1;h;x\nReferences: \n", "line 6: References after the Signature line"},
		{"block continued past signature", good + "Signature: 1;h;x\nCompression: xz\n", "line 6: Compression: no URL line opens its block"},
		{"signature inside a value", sp + "System: x Signature: y\n", "line 2: \"Signature:\" inside a line"},
		{"not utf-8", sp + "System: \xff\n", "line 2: not valid UTF-8"},
		{"no store path", nh + ns + url, "no StorePath field"},
		{"no URL", sp + nh + ns, "no URL field"},
		{"long line", sp + "System: " + strings.Repeat("x", MaxLineLen) + "\n", "line 2: 1048584 bytes"},
		{"many lines", good + strings.Repeat("X-Y: z\n", MaxLines), "more than 1000 lines"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.text), store.GuixDir)
			if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want ErrSyntax saying %q", err, tt.want)
			}
		})
	}
}

func TestParseLenient(t *testing.T) {
	text := "StorePath: /gnu/store/cs56i9digj9qg1bd383cmxc6xrfpdn9n-hello-2.12.2\n" +
		"X-Unknown: ignored\n" +
		"NarHash: sha256:0qhasy0w9w9mfv0vacgzymxl4nww8cslyza5x2ci42v7i2b13lyl\n" +
		"NarSize: 10\nReferences:  cs56i9digj9qg1bd383cmxc6xrfpdn9n-hello-2.12.2   \n" +
		"Deriver: unknown-deriver\nURL: nar/x" // no final newline
	n := mustParse(t, []byte(text), store.GuixDir)
	if len(n.References) != 1 || n.Deriver != "" || n.Files[0].URL != "nar/x" {
		t.Errorf("Parse: %+v", n)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(n *Narinfo)
		want   string
	}{
		{"ok", func(*Narinfo) {}, ""},
		{"store path", func(n *Narinfo) { n.StorePath = "/gnu/store/x" }, "StorePath"},
		{"hash", func(n *Narinfo) { n.NarHash = "sha256:00" }, "NarHash"},
		{"size", func(n *Narinfo) { n.NarSize = 0 }, "NarSize is 0"},
		{"reference", func(n *Narinfo) { n.References = []string{"x"} }, "reference \"x\""},
		{"no files", func(n *Narinfo) { n.Files = nil }, "no URL"},
		{"newline", func(n *Narinfo) { n.System = "a\nb" }, "System"},
		{"signature tag", func(n *Narinfo) { n.System = "x Signature: y" }, "line 5 would contain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := fixture()
			tt.change(n)
			_, err := n.Marshal()
			if tt.want == "" && err != nil || tt.want != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Marshal: %v, want an error saying %q", err, tt.want)
			}
		})
	}
}
