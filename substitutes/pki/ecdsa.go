package pki

import (
	"crypto/hmac"
	"crypto/sha256"
	"slices"

	"filippo.io/edwards25519"
)

// This file is libgcrypt's ECDSA on the Ed25519 curve, the scheme Guix keys
// use. It is not EdDSA: the secret d is a plain scalar with Q = d·G, and a
// signature (r, s) over a SHA-256 digest H is
//
//	e = H >> 3              (H cut to 253 bits, the bit length of the order n)
//	k = RFC 6979 nonce from d and H (HMAC-SHA256)
//	r = (affine Edwards x of k·G) mod n
//	s = k⁻¹·(e + r·d) mod n
//
// Scalars mod n are edwards25519.Scalar values (that type works mod n); they
// are converted from and to the big-endian integers libgcrypt prints.

// qbits is the bit length of the group order n.
const qbits = 253

// reduceBE returns b, a big-endian integer of up to 64 bytes, mod n.
func reduceBE(b []byte) *edwards25519.Scalar {
	var wide [64]byte
	for i, c := range b {
		wide[len(b)-1-i] = c
	}
	s, err := edwards25519.NewScalar().SetUniformBytes(wide[:])
	if err != nil {
		panic("pki: SetUniformBytes rejected 64 bytes: " + err.Error())
	}
	return s
}

// canonicalBE returns b, a 32-byte big-endian integer, as a scalar when it is
// in [1, n-1].
func canonicalBE(b [32]byte) (*edwards25519.Scalar, bool) {
	le := b
	slices.Reverse(le[:])
	s, err := edwards25519.NewScalar().SetCanonicalBytes(le[:])
	if err != nil || s.Equal(edwards25519.NewScalar()) == 1 {
		return nil, false
	}
	return s, true
}

// scalarBE returns s as a 32-byte big-endian integer.
func scalarBE(s *edwards25519.Scalar) [32]byte {
	var out [32]byte
	copy(out[:], s.Bytes())
	slices.Reverse(out[:])
	return out
}

// affineX returns the affine Edwards x coordinate of p, mod n.
func affineX(p *edwards25519.Point) *edwards25519.Scalar {
	X, _, Z, _ := p.ExtendedCoordinates()
	x := X.Multiply(X, Z.Invert(Z)).Bytes()
	slices.Reverse(x)
	return reduceBE(x)
}

// digestScalar returns e = H >> 3 mod n for a SHA-256 digest H.
func digestScalar(h [32]byte) *edwards25519.Scalar {
	e := shiftRight3(h)
	return reduceBE(e[:])
}

// shiftRight3 returns the 256-bit big-endian integer b shifted right by
// 256-qbits = 3 bits, libgcrypt's bits2int for a 256-bit digest.
func shiftRight3(b [32]byte) [32]byte {
	const shift = 256 - qbits
	var out [32]byte
	var carry byte
	for i, c := range b {
		out[i] = c>>shift | carry
		carry = c << (8 - shift)
	}
	return out
}

// signDigest signs the digest h with the secret scalar d (big-endian, any
// value; it is used mod n).
func signDigest(d [32]byte, h [32]byte) (r, s [32]byte) {
	dS := reduceBE(d[:])
	e := digestScalar(h)
	nonces := newRFC6979(d, h)
	for {
		k := nonces.next()
		rS := affineX(new(edwards25519.Point).ScalarBaseMult(k))
		if rS.Equal(edwards25519.NewScalar()) == 1 {
			continue
		}
		sS := edwards25519.NewScalar().MultiplyAdd(rS, dS, e)
		sS.Multiply(sS, edwards25519.NewScalar().Invert(k))
		if sS.Equal(edwards25519.NewScalar()) == 1 {
			continue
		}
		return scalarBE(rS), scalarBE(sS)
	}
}

// verifyDigest reports whether (r, s) is a valid signature of digest h by q.
func verifyDigest(q PublicKey, h [32]byte, r, s [32]byte) bool {
	rS, ok1 := canonicalBE(r)
	sS, ok2 := canonicalBE(s)
	Q, err := new(edwards25519.Point).SetBytes(q.Q[:])
	if !ok1 || !ok2 || err != nil {
		return false
	}
	w := edwards25519.NewScalar().Invert(sS)
	u1 := edwards25519.NewScalar().Multiply(digestScalar(h), w)
	u2 := edwards25519.NewScalar().Multiply(rS, w)
	X := new(edwards25519.Point).VarTimeDoubleScalarBaseMult(u2, Q, u1)
	return affineX(X).Equal(rS) == 1
}

// rfc6979 generates the deterministic nonces of RFC 6979 section 3.2 with
// HMAC-SHA256, as libgcrypt does for n of 253 bits: int2octets(x) is d as 32
// big-endian bytes exactly as stored (libgcrypt does not reduce it),
// bits2octets(h) is (H >> 3) mod n, and each candidate k is the first 256
// bits of output shifted right by 3, kept when 0 < k < n.
type rfc6979 struct {
	k, v []byte
}

func newRFC6979(d, h [32]byte) *rfc6979 {
	z := shiftRight3(h)
	h1 := scalarBE(reduceBE(z[:]))
	g := &rfc6979{k: make([]byte, 32), v: make([]byte, 32)}
	for i := range g.v {
		g.v[i] = 1
	}
	for _, sep := range []byte{0, 1} {
		g.k = g.mac(g.v, []byte{sep}, d[:], h1[:])
		g.v = g.mac(g.v)
	}
	return g
}

func (g *rfc6979) mac(parts ...[]byte) []byte {
	m := hmac.New(sha256.New, g.k)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// next returns the next nonce candidate in [1, n-1].
func (g *rfc6979) next() *edwards25519.Scalar {
	for {
		g.v = g.mac(g.v)
		k, ok := canonicalBE(shiftRight3([32]byte(g.v)))
		g.k = g.mac(g.v, []byte{0})
		g.v = g.mac(g.v)
		if ok {
			return k
		}
	}
}
