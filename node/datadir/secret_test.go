package datadir

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestSecretRoundTrip(t *testing.T) {
	s, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	text := FormatSecret(s)
	if len(text) != 64 || strings.ToLower(text) != text {
		t.Fatalf("FormatSecret = %q, want 64 lowercase hex digits", text)
	}
	got, err := ParseSecret([]byte("  " + strings.ToUpper(text) + "\n"))
	if err != nil || !bytes.Equal(got, s) {
		t.Fatalf("ParseSecret(FormatSecret(s)) = %x, %v; want %x", got, err, s)
	}
}

func TestParseSecretErrors(t *testing.T) {
	for _, in := range []string{"", "abc", strings.Repeat("g", 64), strings.Repeat("a", 66), strings.Repeat("ab", 31) + " a"} {
		if _, err := ParseSecret([]byte(in)); !errors.Is(err, ErrBadSecret) {
			t.Errorf("ParseSecret(%q) = %v, want ErrBadSecret", in, err)
		}
	}
}

func FuzzParseSecret(f *testing.F) {
	f.Add([]byte(strings.Repeat("0f", 32)))
	f.Add([]byte(" \n"))
	f.Add([]byte(strings.Repeat("é", 32)))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := ParseSecret(in)
		if err != nil {
			return
		}
		if len(s) != SecretSize {
			t.Fatalf("secret of %d bytes", len(s))
		}
		if again, err := ParseSecret([]byte(FormatSecret(s))); err != nil || !bytes.Equal(again, s) {
			t.Fatalf("round trip of %x: %x, %v", s, again, err)
		}
	})
}
