package pki

import (
	"errors"
	"unicode/utf8"
)

// Errors returned by the parsers of this package; each comes wrapped with
// context that says what was wrong.
var (
	// ErrNotKey means an s-expression is not the kind of key asked for.
	ErrNotKey = errors.New("not a key of the expected kind")
	// ErrBadKey means a key's contents are invalid: wrong curve, bad q or d,
	// or a secret whose q does not match d.
	ErrBadKey = errors.New("invalid key")
	// ErrBadACL means an ACL is not a list of
	// `(entry <public-key> (tag (guix import)))`.
	ErrBadACL = errors.New("invalid access-control list")
	// ErrBadHost means a host name cannot go into a Signature field.
	ErrBadHost = errors.New("invalid host name for a signature")
)

// Guix treats the text libgcrypt prints as ISO-8859-1 characters (one per
// byte) and writes it to files and into base64 as UTF-8. So a byte >= 0x80 in
// the printed text, which libgcrypt uses raw inside quoted strings, becomes
// two bytes on disk. toText and fromText do the same conversion both ways.

// toText encodes libgcrypt's printed bytes the way Guix stores them.
func toText(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		out = utf8.AppendRune(out, rune(c))
	}
	return out
}

// fromText undoes toText when b is UTF-8 text whose characters all fit in a
// byte, as Guix reads it back; anything else (such as a canonical s-expression
// with binary atoms) is returned unchanged for the s-expression reader.
func fromText(b []byte) []byte {
	ascii := true
	for _, c := range b {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii || !utf8.Valid(b) {
		return b
	}
	out := make([]byte, 0, len(b))
	for _, r := range string(b) {
		if r > 0xff {
			return b
		}
		out = append(out, byte(r))
	}
	return out
}
