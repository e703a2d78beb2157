package narinfo

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/internal/guixtest"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/nar"
	"github.com/tbfg/tbfg-node/store/nixbase32"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

// substituteCase is one narinfo served to the real guix substitute.
type substituteCase struct {
	name string
	want pki.Status // what VerifyGuix must say; guix must accept exactly the valid ones
	// make signs n (layout and fields already set) and returns the text served.
	make func(t *testing.T, n *Narinfo, k, stranger *pki.SecretKey) []byte
}

var substituteCases = []substituteCase{
	{"valid", pki.Valid, func(t *testing.T, n *Narinfo, k, _ *pki.SecretKey) []byte {
		return signed(t, n, k)
	}},
	{"valid-old-layout", pki.Valid, func(t *testing.T, n *Narinfo, k, _ *pki.SecretKey) []byte {
		n.Layout = LayoutGuixOld
		return signed(t, n, k)
	}},
	{"valid-new-urls", pki.Valid, func(t *testing.T, n *Narinfo, k, _ *pki.SecretKey) []byte {
		signed(t, n, k)
		if err := n.SetFiles([]File{{URL: "nar/" + n.StorePath.Base(), Compression: "none", FileSize: n.NarSize}}); err != nil {
			t.Fatal(err)
		}
		return mustMarshal(t, n) // re-served with URL blocks of its own, as the mesh does
	}},
	{"unauthorized-key", pki.UnauthorizedKey, func(t *testing.T, n *Narinfo, _, stranger *pki.SecretKey) []byte {
		return signed(t, n, stranger)
	}},
	{"tampered-narhash", pki.HashMismatch, func(t *testing.T, n *Narinfo, k, _ *pki.SecretKey) []byte {
		text := signed(t, n, k)
		other := "sha256:" + nixbase32.Encode(make([]byte, 32))
		return bytes.Replace(text, []byte(n.NarHash), []byte(other), 1)
	}},
	{"invalid-signature", pki.InvalidSignature, func(t *testing.T, n *Narinfo, k, _ *pki.SecretKey) []byte {
		text := signed(t, n, k)
		field := n.Signatures[0]
		return bytes.Replace(text, []byte(field), []byte(flipR(t, field)), 1)
	}},
	{"corrupt-signature", pki.CorruptSignature, func(t *testing.T, n *Narinfo, k, _ *pki.SecretKey) []byte {
		text := signed(t, n, k)
		field := n.Signatures[0]
		junk := "1;host;" + base64.StdEncoding.EncodeToString([]byte("(not a signature"))
		return bytes.Replace(text, []byte(field), []byte(junk), 1)
	}},
	{"unsigned", pki.Unsigned, func(t *testing.T, n *Narinfo, _, _ *pki.SecretKey) []byte {
		return mustMarshal(t, n)
	}},
}

func signed(t *testing.T, n *Narinfo, k *pki.SecretKey) []byte {
	t.Helper()
	if err := SignGuix(n, "tbfg-test", k); err != nil {
		t.Fatal(err)
	}
	return mustMarshal(t, n)
}

// flipR changes one digit of the signature's r value: a well-formed
// signature by the right key over the right hash that does not verify.
func flipR(t *testing.T, field string) string {
	t.Helper()
	parts := strings.SplitN(field, ";", 3)
	payload, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(payload, []byte("(r #"))
	if i < 0 {
		t.Fatalf("no r value in %s", payload)
	}
	i += len("(r #") + 8 // a hex digit inside r
	if payload[i] == '0' {
		payload[i] = '1'
	} else {
		payload[i] = '0'
	}
	return parts[0] + ";" + parts[1] + ";" + base64.StdEncoding.EncodeToString(payload)
}

// TestGuixSubstituteAgrees serves narinfos signed here, valid or broken in
// each way a signature can be, to the real `guix substitute`, the program
// guix-daemon runs to check and fetch substitutes, with an ACL of the
// signing key. Guix must offer exactly the items VerifyGuix finds valid, and
// fetch each of them with the NAR hash checked.
func TestGuixSubstituteAgrees(t *testing.T) {
	guix := guixtest.Require(t)
	k, err := pki.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := pki.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	acl := &pki.ACL{Keys: []pki.PublicKey{k.Public}}
	served := map[string][]byte{} // URL path -> body
	var paths []store.Path
	want := map[store.Path]bool{}
	sums := map[store.Path]string{} // the reply of a successful fetch
	for _, c := range substituteCases {
		n, archive := testItem(t, c.name)
		text := c.make(t, n, k, stranger)
		if got := VerifyGuix(mustParse(t, text, store.GuixDir), acl); got != c.want {
			t.Errorf("%s: VerifyGuix = %v, want %v\n%s", c.name, got, c.want, text)
		}
		served["/"+n.StorePath.HashPart()+".narinfo"] = text
		served["/nar/"+n.StorePath.Base()] = archive
		paths = append(paths, n.StorePath)
		want[n.StorePath] = c.want == pki.Valid
		sums[n.StorePath] = fmt.Sprintf("success %s %d", n.NarHash, n.NarSize)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := served[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(body)
	}))
	defer srv.Close()
	sub := guixtest.NewSubstituter(t, guix, srv.URL, acl.Marshal())

	offered := sub.Offered(storeStrings(paths)...)
	for _, p := range paths {
		if got := slices.Contains(offered, string(p)); got != want[p] {
			t.Errorf("%s: guix substitute offers it: %v; VerifyGuix says valid: %v", p.Base(), got, want[p])
		}
	}
	for _, p := range paths {
		if !want[p] {
			continue
		}
		reply, dest := sub.Fetch(string(p))
		if reply != sums[p] {
			t.Errorf("%s: guix substitute replied %q, want %q", p.Base(), reply, sums[p])
			continue
		}
		if got, err := os.ReadFile(dest); err != nil || string(got) != p.Base() {
			t.Errorf("%s: fetched %q, %v", p.Base(), got, err)
		}
	}
}

// testItem is a store item holding a file whose contents are its own base
// name, with its NAR, and an unsigned narinfo for it in Guix's layout.
func testItem(t *testing.T, name string) (*Narinfo, []byte) {
	t.Helper()
	digest := make([]byte, 20)
	rand.Read(digest)
	p := store.Path("/gnu/store/" + nixbase32.Encode(digest) + "-tbfg-check-" + name)
	file := filepath.Join(t.TempDir(), "item")
	if err := os.WriteFile(file, []byte(p.Base()), 0o444); err != nil {
		t.Fatal(err)
	}
	var archive bytes.Buffer
	if err := nar.Dump(&archive, file); err != nil {
		t.Fatal(err)
	}
	sum, err := nar.HashReader(bytes.NewReader(archive.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	n := &Narinfo{StorePath: p, NarHash: sum.NarHash(), NarSize: uint64(sum.Size), System: "x86_64-linux",
		Files: []File{{URL: "nar/" + p.Base(), Compression: "none", FileSize: uint64(sum.Size)}}}
	return n, archive.Bytes()
}

func storeStrings(ps []store.Path) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	return out
}
