package sexp

import (
	"bytes"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse. Whatever it accepts must come back
// unchanged through the canonical, transport and advanced forms.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"(acl)", "(1:a3:abc)", `(a "x\ty\x41\101")`, "(a #00ff#)", "(a |YWJj|)",
		"{KDE6YTM6YWJjKQ==}", "(a (b (c)) d)", `(a 3"abc")`,
		"(public-key \n (ecc \n  (curve Ed25519)\n  (q #7D602902D3A2DBB83F8A0FB98602A754C5493B0B778C8D1DD4E0F41DE14DE34F#)\n  )\n )\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := Parse(in)
		if err != nil {
			return
		}
		forms := map[string][]byte{"canonical": Canonical(s), "transport": Transport(s)}
		if !hasRawNUL(s) {
			forms["advanced"] = Advanced(s)
		}
		for name, b := range forms {
			again, err := Parse(b)
			if err != nil {
				t.Fatalf("%s form %q does not parse: %v", name, b, err)
			}
			if !Equal(s, again) {
				t.Fatalf("%s form %q reads back as %q", name, b, Canonical(again))
			}
		}
	})
}

// hasRawNUL reports whether Advanced would write a NUL byte as part of a
// token, which no reader accepts (see Advanced).
func hasRawNUL(s Sexp) bool {
	switch x := s.(type) {
	case Atom:
		return suitableForm(x) == formToken && bytes.IndexByte(x, 0) >= 0
	case List:
		for _, e := range x {
			if hasRawNUL(e) {
				return true
			}
		}
	}
	return false
}
