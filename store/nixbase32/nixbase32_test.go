package nixbase32

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
)

func TestKnownValues(t *testing.T) {
	// Values printed by `nix hash to-base32` / `nix-hash --type sha256 --to-base32`.
	for _, tc := range []struct{ hex, b32 string }{
		{"", ""},
		{"1f", "0z"},
		{"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "1zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"},
		// sha256("hello\n"), as printed by `nix-hash --type sha256 --flat --base32`
		{"5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03", "00xyyr3fi8l6hb839bv3f7yb86yjv7xi1cgh1xnhipym4asvb4aq"},
	} {
		b, _ := hex.DecodeString(tc.hex)
		if got := Encode(b); got != tc.b32 {
			t.Errorf("Encode(%s) = %q, want %q", tc.hex, got, tc.b32)
		}
		got, err := Decode(tc.b32)
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("Decode(%q) = %x, %v; want %s", tc.b32, got, err, tc.hex)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for n := 0; n < 64; n++ {
		sum := sha256.Sum256([]byte{byte(n)})
		b := bytes.Repeat(sum[:], 3)[:n]
		got, err := Decode(Encode(b))
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("round trip of %d bytes: %x, %v", n, got, err)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, s := range []string{"e0", "0u", "zz", "0", "0000000000000000000000000000000Z"} {
		if _, err := Decode(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("Decode(%q) error = %v, want ErrInvalid", s, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("00xyyr3fi8l6hb839bv3f7yb86yjv7xi1cgh1xnhipym4asvb4aq")
	f.Add("0z")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := Decode(s)
		if err != nil {
			return
		}
		if Encode(b) != s {
			t.Fatalf("Decode(%q) then Encode gives %q", s, Encode(b))
		}
	})
}
