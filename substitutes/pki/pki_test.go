package pki

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/edwards25519"

	"github.com/tbfg/tbfg-node/substitutes/sexp"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// splitNarinfo returns the signed part of a narinfo and its Signature value.
func splitNarinfo(t testing.TB, narinfo []byte) (body []byte, field string) {
	t.Helper()
	i := bytes.Index(narinfo, []byte("Signature:"))
	if i < 0 {
		t.Fatal("no Signature: line")
	}
	line, _, _ := strings.Cut(string(narinfo[i+len("Signature:"):]), "\n")
	return narinfo[:i], strings.TrimSpace(line)
}

func bordeaux(t testing.TB) (body []byte, field string, acl *ACL) {
	t.Helper()
	body, field = splitNarinfo(t, readTestdata(t, "hello-2.12.2.narinfo"))
	acl, err := ParseACL(readTestdata(t, "bordeaux.guix.gnu.org.pub"))
	if err != nil {
		t.Fatal(err)
	}
	return body, field, acl
}

func TestBordeauxNarinfoVerifies(t *testing.T) {
	body, field, acl := bordeaux(t)
	if got := VerifyField(body, field, acl); got != Valid {
		t.Fatalf("got %v, want %v", got, Valid)
	}
}

// TestBordeauxEveryByteMatters changes each byte of the signed part in turn;
// the signature must never verify afterwards.
func TestBordeauxEveryByteMatters(t *testing.T) {
	body, field, acl := bordeaux(t)
	for i := range body {
		changed := bytes.Clone(body)
		changed[i] ^= 0x01
		got := VerifyField(changed, field, acl)
		if got == Valid {
			t.Fatalf("byte %d changed: still valid", i)
		}
		if got != HashMismatch && got != Unsigned {
			t.Fatalf("byte %d changed: got %v, want hash-mismatch (or unsigned when a field name broke)", i, got)
		}
	}
}

func TestVerifyStatuses(t *testing.T) {
	body, field, acl := bordeaux(t)
	other, err := GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := base64.StdEncoding.DecodeString(strings.SplitN(field, ";", 3)[2])
	resign := func(p []byte) string { return "1;bayfront;" + base64.StdEncoding.EncodeToString(p) }
	tests := []struct {
		name  string
		body  []byte
		field string
		acl   *ACL
		want  Status
	}{
		{"valid", body, field, acl, Valid},
		{"no signature", body, "", acl, Unsigned},
		{"no NarHash in signed part", bytes.Replace(body, []byte("NarHash:"), []byte("NarHasX:"), 1), field, acl, Unsigned},
		{"unauthorized key", body, field, &ACL{Keys: []PublicKey{other.Public}}, UnauthorizedKey},
		{"empty acl", body, field, &ACL{}, UnauthorizedKey},
		{"nil acl", body, field, nil, UnauthorizedKey},
		{"corrupt base64", body, field[:len(field)-5] + "!" + field[len(field)-4:], acl, CorruptSignature},
		{"truncated base64", body, field[:len(field)-3], acl, CorruptSignature},
		{"corrupt sexp", body, resign(payload[:len(payload)-4]), acl, CorruptSignature},
		{"not utf-8", body, resign(append(bytes.Clone(payload), 0xff)), acl, CorruptSignature},
		{"no public key", body, resign(bytes.Replace(payload, []byte("public-key"), []byte("public-kez"), 1)), acl, CorruptSignature},
		{"no data", body, resign(bytes.Replace(payload, []byte("(data"), []byte("(datx"), 1)), acl, CorruptSignature},
		{"version 2", body, "2" + field[1:], acl, CorruptSignature},
		{"too many parts", body, field + ";x", acl, CorruptSignature},
		{"other body", append(bytes.Clone(body), 'x'), field, acl, HashMismatch},
		{"no hash", body, resign(bytes.Replace(payload, []byte("(hash"), []byte("(hasx"), 1)), acl, HashMismatch},
		{"changed r", body, resign(bytes.Replace(payload, []byte("(r #0BA6"), []byte("(r #0BA7"), 1)), acl, InvalidSignature},
		{"changed s", body, resign(bytes.Replace(payload, []byte("(s #03DB"), []byte("(s #03DC"), 1)), acl, InvalidSignature},
		{"no sig-val", body, resign(bytes.Replace(payload, []byte("sig-val"), []byte("sig-vax"), 1)), acl, InvalidSignature},
		{"eddsa flags", body, resign(bytes.Replace(payload, []byte("rfc6979"), []byte("eddsa"), 1)), acl, InvalidSignature},
		{"other digest name", body, resign(bytes.Replace(payload, []byte("sha256"), []byte("sha512"), 1)), acl, InvalidSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VerifyField(tt.body, tt.field, tt.acl); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStatusWords(t *testing.T) {
	want := map[Status]string{
		Valid: "valid-signature", Unsigned: "unsigned", CorruptSignature: "corrupt-signature",
		HashMismatch: "hash-mismatch", InvalidSignature: "invalid-signature", UnauthorizedKey: "unauthorized-key",
	}
	for s, w := range want {
		if s.String() != w {
			t.Errorf("%d: got %q, want %q", int(s), s.String(), w)
		}
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	k, err := GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	acl := &ACL{Keys: []PublicKey{k.Public}}
	body := []byte("StorePath: /gnu/store/aaa-x\nNarHash: sha256:0\nReferences: \n")
	field, err := SignField(body, "node-1", k)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(field, "1;node-1;") {
		t.Fatalf("field %q", field)
	}
	if got := VerifyField(body, field, acl); got != Valid {
		t.Fatalf("got %v", got)
	}
	again, _ := SignField(body, "node-1", k)
	if again != field {
		t.Fatal("signing is not deterministic (RFC 6979)")
	}
	for _, host := range []string{"", "a;b", "a\nb"} {
		if _, err := SignField(body, host, k); !errors.Is(err, ErrBadHost) {
			t.Errorf("host %q: got %v, want ErrBadHost", host, err)
		}
	}
}

func TestACLExample(t *testing.T) {
	b := readTestdata(t, "acl.example")
	acl, err := ParseACL(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(acl.Keys) != 1 || acl.Keys[0].String() != "(public-key (ecc (curve Ed25519) (q #F809503BC3733DF8A249F59F02A1124F9FEFD4A67D5F9BF2A5B58EDDDEA4DDC2#)))" {
		t.Fatalf("keys %v", acl.Keys)
	}
	if !bytes.Equal(acl.Marshal(), b) {
		t.Fatalf("marshal:\n%s\nwant\n%s", acl.Marshal(), b)
	}
	if !acl.Authorized(acl.Keys[0]) {
		t.Fatal("key in the ACL is not authorized")
	}
	if got := string((&ACL{}).Marshal()); got != "(acl)\n" {
		t.Fatalf("empty acl: %q", got)
	}
}

func TestParseErrors(t *testing.T) {
	good := readTestdata(t, "bordeaux.guix.gnu.org.pub")
	tests := []struct {
		name  string
		parse func([]byte) error
		in    string
		want  error
	}{
		{"pub syntax", parsePub, "(public-key", sexp.ErrSyntax},
		{"pub is secret", parsePub, "(private-key (ecc (curve Ed25519)))", ErrNotKey},
		{"pub other curve", parsePub, strings.Replace(string(good), "Ed25519", "NIST P-256", 1), ErrBadKey},
		{"pub short q", parsePub, "(public-key (ecc (curve Ed25519) (q #0102#)))", ErrBadKey},
		{"pub no q", parsePub, "(public-key (ecc (curve Ed25519)))", ErrBadKey},
		{"pub rsa", parsePub, "(public-key (rsa (n #01#) (e #03#)))", ErrBadKey},
		{"sec is public", parseSec, string(good), ErrNotKey},
		{"sec no d", parseSec, strings.Replace(string(good), "public-key", "private-key", 1), ErrBadKey},
		{"acl other tag", parseACL, "(acl (entry (public-key (ecc (curve Ed25519) (q #7D602902D3A2DBB83F8A0FB98602A754C5493B0B778C8D1DD4E0F41DE14DE34F#))) (tag (guix export))))", ErrBadACL},
		{"acl not acl", parseACL, "(foo)", ErrBadACL},
		{"acl bad key", parseACL, "(acl (entry (public-key (ecc (curve Ed25519) (q #01#))) (tag (guix import))))", ErrBadKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.parse([]byte(tt.in)); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func parsePub(b []byte) error { _, err := ParsePublicKey(b); return err }
func parseSec(b []byte) error { _, err := ParseSecretKey(b); return err }
func parseACL(b []byte) error { _, err := ParseACL(b); return err }

func TestSecretKeyRoundTrip(t *testing.T) {
	k, err := GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseSecretKey(k.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if *got != *k {
		t.Fatal("secret key does not round-trip")
	}
	pub, err := ParsePublicKey(k.Public.Marshal())
	if err != nil || pub != k.Public {
		t.Fatalf("public key does not round-trip: %v", err)
	}
	wrong := *k
	wrong.D[31] ^= 8
	if _, err := ParseSecretKey(wrong.Marshal()); !errors.Is(err, ErrBadKey) {
		t.Fatalf("mismatched q and d: got %v", err)
	}
}

// TestHighBytesAreUTF8 covers atoms libgcrypt prints as quoted strings with
// raw bytes >= 0xa1: Guix stores those characters as UTF-8.
func TestHighBytesAreUTF8(t *testing.T) {
	var k PublicKey
	for i := range k.Q {
		k.Q[i] = 0xe9
	}
	k.Q[0] = 'a'
	for k.Q[1] = 0xa1; k.Q[1] < 0xff; k.Q[1]++ {
		if _, err := new(edwards25519.Point).SetBytes(k.Q[:]); err == nil {
			break
		}
	}
	text := k.Marshal()
	if !bytes.Contains(text, []byte("\"a"+string(rune(k.Q[1]))+"\u00e9")) {
		t.Fatalf("q not written as a UTF-8 quoted string:\n%s", text)
	}
	l, err := sexp.Parse(fromText(text))
	if err != nil {
		t.Fatal(err)
	}
	got, err := publicKeyFromSexp(l)
	if err != nil || got != k {
		t.Fatalf("got %v, %v", got, err)
	}
}

func TestSignedMPI(t *testing.T) {
	tests := []struct{ in, want []byte }{
		{[]byte{0, 0, 1, 2}, []byte{1, 2}},
		{[]byte{0, 0x80, 1}, []byte{0, 0x80, 1}},
		{[]byte{0x7f}, []byte{0x7f}},
		{[]byte{0, 0}, []byte{}},
	}
	for _, tt := range tests {
		if got := signedMPI(tt.in); !bytes.Equal(got, tt.want) {
			t.Errorf("signedMPI(%x) = %x, want %x", tt.in, got, tt.want)
		}
	}
}
