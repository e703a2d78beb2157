package pki

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"io"

	"filippo.io/edwards25519"

	"github.com/tbfg/tbfg-node/substitutes/sexp"
)

// PublicKey is a Guix signing public key: libgcrypt's
// `(public-key (ecc (curve Ed25519) (q #..#)))`.
type PublicKey struct {
	// Q is the public point in Ed25519's compressed encoding (little-endian y
	// with the sign of x in the top bit), as libgcrypt writes q.
	Q [32]byte
}

// SecretKey is a Guix signing secret key: libgcrypt's
// `(private-key (ecc (curve Ed25519) (q #..#) (d #..#)))`.
type SecretKey struct {
	// Public is the matching public key, Q = d·G.
	Public PublicKey
	// D is the secret scalar as a 32-byte big-endian integer, the way
	// libgcrypt stores d (it is not an EdDSA seed and is not hashed).
	D [32]byte
}

// GenerateKey makes a new key pair the way libgcrypt's
// `(genkey (ecdsa (curve Ed25519) (flags rfc6979)))` does: d is 256 random
// bits with the three low bits and the top bit cleared and bit 254 set. A nil
// random reads from crypto/rand.
func GenerateKey(random io.Reader) (*SecretKey, error) {
	if random == nil {
		random = rand.Reader
	}
	var d [32]byte
	if _, err := io.ReadFull(random, d[:]); err != nil {
		return nil, fmt.Errorf("generate key: read random bytes: %w", err)
	}
	d[0] = d[0]&0x7f | 0x40
	d[31] &^= 7
	return &SecretKey{Public: publicFromSecret(d), D: d}, nil
}

// publicFromSecret returns the public key d·G.
func publicFromSecret(d [32]byte) PublicKey {
	p := new(edwards25519.Point).ScalarBaseMult(reduceBE(d[:]))
	var k PublicKey
	copy(k.Q[:], p.Bytes())
	return k
}

// ParsePublicKey reads the contents of a signing-key.pub file, in any
// s-expression form. Other elements beside curve and q are ignored.
func ParsePublicKey(b []byte) (PublicKey, error) {
	l, err := sexp.Parse(fromText(b))
	if err != nil {
		return PublicKey{}, fmt.Errorf("public key: %w", err)
	}
	if l.Head() != "public-key" {
		return PublicKey{}, fmt.Errorf("public key: %w: found (%s ...), want (public-key ...)", ErrNotKey, l.Head())
	}
	return publicKeyFromSexp(l)
}

// ParseSecretKey reads the contents of a signing-key.sec file, in any
// s-expression form, and checks that its q matches its d.
func ParseSecretKey(b []byte) (*SecretKey, error) {
	l, err := sexp.Parse(fromText(b))
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	if l.Head() != "private-key" {
		return nil, fmt.Errorf("secret key: %w: found (%s ...), want (private-key ...)", ErrNotKey, l.Head())
	}
	ecc, err := eccParams(l)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	pub, err := publicKeyFromSexp(l)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	d, err := mpiParam(ecc, "d")
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	if reduceBE(d[:]).Equal(edwards25519.NewScalar()) == 1 {
		return nil, fmt.Errorf("secret key: %w: d is zero mod n", ErrBadKey)
	}
	if want := publicFromSecret(d); subtle.ConstantTimeCompare(want.Q[:], pub.Q[:]) != 1 {
		return nil, fmt.Errorf("secret key: %w: q does not match d", ErrBadKey)
	}
	return &SecretKey{Public: pub, D: d}, nil
}

// Marshal returns the key exactly as `guix archive --generate-key` writes
// signing-key.pub.
func (k PublicKey) Marshal() []byte {
	return toText(sexp.Advanced(k.sexp()))
}

// Marshal returns the key exactly as `guix archive --generate-key` writes
// signing-key.sec.
func (k *SecretKey) Marshal() []byte {
	l := sexp.List{sexp.Atom("private-key"), sexp.List{
		sexp.Atom("ecc"),
		sexp.List{sexp.Atom("curve"), sexp.Atom("Ed25519")},
		sexp.List{sexp.Atom("q"), sexp.Atom(k.Public.Q[:])},
		sexp.List{sexp.Atom("d"), sexp.Atom(signedMPI(k.D[:]))},
	}}
	return toText(sexp.Advanced(l))
}

// String returns the key's advanced form on one line, for messages.
func (k PublicKey) String() string {
	return fmt.Sprintf("(public-key (ecc (curve Ed25519) (q #%X#)))", k.Q[:])
}

// sexp returns the key as libgcrypt writes it.
func (k PublicKey) sexp() sexp.List {
	return sexp.List{sexp.Atom("public-key"), sexp.List{
		sexp.Atom("ecc"),
		sexp.List{sexp.Atom("curve"), sexp.Atom("Ed25519")},
		sexp.List{sexp.Atom("q"), sexp.Atom(k.Q[:])},
	}}
}

// publicKeyFromSexp reads the (ecc ...) inside a (public-key ...) or
// (private-key ...) list.
func publicKeyFromSexp(l sexp.List) (PublicKey, error) {
	ecc, err := eccParams(l)
	if err != nil {
		return PublicKey{}, err
	}
	q, ok := param(ecc, "q")
	if !ok {
		return PublicKey{}, fmt.Errorf("%w: no (q ...) in (ecc ...)", ErrBadKey)
	}
	if len(q) == 33 && q[0] == 0x40 {
		q = q[1:] // libgcrypt's optional prefix for a compressed point
	}
	if len(q) != 32 {
		return PublicKey{}, fmt.Errorf("%w: q is %d bytes, want 32", ErrBadKey, len(q))
	}
	if _, err := new(edwards25519.Point).SetBytes(q); err != nil {
		return PublicKey{}, fmt.Errorf("%w: q is not a point on Ed25519", ErrBadKey)
	}
	return PublicKey{Q: [32]byte(q)}, nil
}

// eccParams returns the (ecc ...) list of a key after checking its curve.
func eccParams(l sexp.List) (sexp.List, error) {
	if len(l) != 2 {
		return nil, fmt.Errorf("%w: (%s ...) must hold exactly one (ecc ...)", ErrBadKey, l.Head())
	}
	ecc, ok := l[1].(sexp.List)
	if !ok || ecc.Head() != "ecc" {
		return nil, fmt.Errorf("%w: want (ecc ...) inside (%s ...)", ErrBadKey, l.Head())
	}
	if curve, _ := param(ecc, "curve"); string(curve) != "Ed25519" {
		return nil, fmt.Errorf("%w: curve %q, want Ed25519", ErrBadKey, curve)
	}
	return ecc, nil
}

// param returns the atom of the first (name atom) element of l.
func param(l sexp.List, name string) (sexp.Atom, bool) {
	for _, e := range l[1:] {
		if sub, ok := e.(sexp.List); ok && sub.Head() == name && len(sub) == 2 {
			a, ok := sub.AtomAt(1)
			return a, ok
		}
	}
	return nil, false
}

// mpiParam reads an integer of at most 256 bits. Like libgcrypt, it reads
// the bytes as unsigned big-endian, so a leading 00 (written before a set top
// bit by %m) and a set top bit (written by %M) both mean what they say.
func mpiParam(l sexp.List, name string) ([32]byte, error) {
	a, ok := param(l, name)
	if !ok {
		return [32]byte{}, fmt.Errorf("%w: no (%s ...)", ErrBadKey, name)
	}
	return mpiValue(a, name)
}

func mpiValue(a sexp.Atom, name string) ([32]byte, error) {
	v := bytes.TrimLeft(a, "\x00")
	if len(v) > 32 {
		return [32]byte{}, fmt.Errorf("%w: %s is longer than 256 bits", ErrBadKey, name)
	}
	var out [32]byte
	copy(out[32-len(v):], v)
	return out, nil
}

// unsignedMPI returns v without leading zero bytes, as libgcrypt's %M
// (GCRYMPI_FMT_USG) writes it.
func unsignedMPI(v []byte) []byte {
	return bytes.TrimLeft(v, "\x00")
}

// signedMPI returns v as libgcrypt's %m (GCRYMPI_FMT_STD) writes a
// non-negative integer: leading zeros dropped, then a 00 byte when the top
// bit is set so that it does not read as negative.
func signedMPI(v []byte) []byte {
	u := unsignedMPI(v)
	if len(u) > 0 && u[0]&0x80 != 0 {
		return append([]byte{0}, u...)
	}
	return u
}
