package nixbase32

import (
	"errors"
	"fmt"
)

// Alphabet is the nix-base32 digit set, in digit order.
const Alphabet = "0123456789abcdfghijklmnpqrsvwxyz"

// ErrInvalid is wrapped by every decoding error.
var ErrInvalid = errors.New("invalid nix-base32")

var digit = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(Alphabet); i++ {
		t[Alphabet[i]] = int8(i)
	}
	return t
}()

// EncodedLen is the length of the encoding of n bytes.
func EncodedLen(n int) int {
	if n == 0 {
		return 0
	}
	return (n*8-1)/5 + 1
}

// DecodedLen is the number of bytes an encoding of length n holds.
func DecodedLen(n int) int { return n * 5 / 8 }

// Encode returns the nix-base32 text of b. The last character holds the lowest
// five bits of b[0].
func Encode(b []byte) string {
	n := EncodedLen(len(b))
	out := make([]byte, n)
	for k := 0; k < n; k++ {
		pos := (n - 1 - k) * 5
		i, j := pos/8, uint(pos%8)
		c := b[i] >> j
		if i+1 < len(b) {
			c |= b[i+1] << (8 - j)
		}
		out[k] = Alphabet[c&0x1f]
	}
	return string(out)
}

// Decode parses nix-base32 text. It rejects characters outside the alphabet and
// encodings whose unused high bits are not zero, so every byte string has
// exactly one accepted encoding.
func Decode(s string) ([]byte, error) {
	size := DecodedLen(len(s))
	if EncodedLen(size) != len(s) {
		return nil, fmt.Errorf("%w: length %d is not the encoding of a whole number of bytes", ErrInvalid, len(s))
	}
	out := make([]byte, size)
	for n := 0; n < len(s); n++ {
		c := s[len(s)-1-n]
		d := digit[c]
		if d < 0 {
			return nil, fmt.Errorf("%w: character %q at position %d", ErrInvalid, c, len(s)-1-n)
		}
		pos := n * 5
		i, j := pos/8, uint(pos%8)
		out[i] |= byte(d) << j
		carry := byte(d) >> (8 - j)
		if i+1 < size {
			out[i+1] |= carry
		} else if carry != 0 {
			return nil, fmt.Errorf("%w: %q has bits set beyond its %d bytes", ErrInvalid, s, size)
		}
	}
	return out, nil
}
