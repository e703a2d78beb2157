package nixkey

import (
	"strings"
	"testing"
)

// FuzzParse checks that the key and signature parsers never panic, and that
// what they accept prints back to text they read the same way.
func FuzzParse(f *testing.F) {
	k := seedKey("cache.example.org-1")
	f.Add(k.String())
	f.Add(k.Public().String())
	f.Add(k.Sign("1;/gnu/store/x-p;sha256:0;1;"))
	f.Add("k:" + strings.Repeat("A", 86) + "==")
	f.Fuzz(func(t *testing.T, s string) {
		if sk, err := ParseSecretKey([]byte(s)); err == nil {
			if again, err := ParseSecretKey([]byte(sk.String())); err != nil || again.String() != sk.String() {
				t.Fatalf("secret key %q printed as %q: %v", s, sk.String(), err)
			}
			if !strings.HasPrefix(sk.Sign("x"), sk.Name+":") {
				t.Fatal("signature does not carry the key name")
			}
		}
		if pk, err := ParsePublicKey([]byte(s)); err == nil {
			if again, err := ParsePublicKey([]byte(pk.String())); err != nil || again.String() != pk.String() {
				t.Fatalf("public key %q printed as %q: %v", s, pk.String(), err)
			}
			Verify("x", s, []PublicKey{pk})
		}
		if name, raw, err := ParseSignature(s); err == nil && (name == "" || len(raw) != 64) {
			t.Fatalf("ParseSignature(%q) accepted name %q and %d bytes", s, name, len(raw))
		}
		ParsePublicKeys([]byte(s))
	})
}
