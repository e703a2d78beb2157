package pki

import (
	"bytes"
	"slices"
	"testing"
)

// FuzzParseACL: whatever ParseACL accepts, Marshal writes back to the same keys.
func FuzzParseACL(f *testing.F) {
	f.Add(readTestdata(f, "acl.example"))
	f.Add(readTestdata(f, "bordeaux.guix.gnu.org.pub"))
	f.Add([]byte("(acl)"))
	f.Fuzz(func(t *testing.T, in []byte) {
		acl, err := ParseACL(in)
		if err != nil {
			return
		}
		again, err := ParseACL(acl.Marshal())
		if err != nil || !slices.Equal(acl.Keys, again.Keys) {
			t.Fatalf("ACL does not survive Marshal: %v", err)
		}
	})
}

// FuzzParsePublicKey: whatever ParsePublicKey accepts, Marshal writes back to
// the same key.
func FuzzParsePublicKey(f *testing.F) {
	f.Add(readTestdata(f, "bordeaux.guix.gnu.org.pub"))
	f.Add([]byte("(public-key (ecc (curve Ed25519) (q |fWApAtOi27g/ig+5hgKnVMVJOwt3jI0d1OD0HeFN408=|)))"))
	f.Fuzz(func(t *testing.T, in []byte) {
		k, err := ParsePublicKey(in)
		if err != nil {
			return
		}
		again, err := ParsePublicKey(k.Marshal())
		if err != nil || again != k {
			t.Fatalf("key does not survive Marshal: %v", err)
		}
	})
}

// FuzzParseSecretKey: whatever ParseSecretKey accepts, Marshal writes back to
// the same key.
func FuzzParseSecretKey(f *testing.F) {
	f.Add([]byte("(private-key (ecc (curve Ed25519) (q #8F73D51C6619965E51790638C90B553F4CA68B647F791AB352A4DBC7551620DF#) (d #7AD0DA4D4368BC336ABF316D754DD1C1036F9546297F82E03B218E8315FF8E30#)))"))
	f.Fuzz(func(t *testing.T, in []byte) {
		k, err := ParseSecretKey(in)
		if err != nil {
			return
		}
		again, err := ParseSecretKey(k.Marshal())
		if err != nil || *again != *k {
			t.Fatalf("key does not survive Marshal: %v", err)
		}
	})
}

// FuzzVerifyField checks arbitrary bodies and fields against the bordeaux
// key: nothing panics, and only the genuine body is ever valid.
func FuzzVerifyField(f *testing.F) {
	body, field, acl := bordeaux(f)
	f.Add(body, field)
	f.Add(body, "1;x;KGEp")
	f.Add([]byte("StorePath: x\nNarHash: y\nReferences: \n"), field)
	f.Fuzz(func(t *testing.T, in []byte, fld string) {
		if VerifyField(in, fld, acl) == Valid && !bytes.Equal(in, body) {
			t.Fatalf("forged: %q with %q", in, fld)
		}
	})
}
