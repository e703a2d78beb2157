package pki

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/tbfg/tbfg-node/substitutes/sexp"
)

// Status is the outcome of checking a narinfo signature, with the same cases
// as Guix's signature-case.
type Status int

// The statuses, in the order VerifyField can reach them.
const (
	// Valid: signed by an authorized key over exactly this body.
	Valid Status = iota
	// Unsigned: no Signature field, or the signed part lacks StorePath,
	// NarHash or References.
	Unsigned
	// CorruptSignature: the field is not `1;<host>;<base64>`, the payload is
	// not an s-expression, or it has no (data ...) or no (public-key ...).
	CorruptSignature
	// HashMismatch: the signature is over a different body.
	HashMismatch
	// InvalidSignature: the key is authorized and the hash matches, but the
	// ECDSA signature does not verify.
	InvalidSignature
	// UnauthorizedKey: the signing key is not in the ACL.
	UnauthorizedKey
)

// String returns Guix's word for s, e.g. "hash-mismatch".
func (s Status) String() string {
	switch s {
	case Valid:
		return "valid-signature"
	case Unsigned:
		return "unsigned"
	case CorruptSignature:
		return "corrupt-signature"
	case HashMismatch:
		return "hash-mismatch"
	case InvalidSignature:
		return "invalid-signature"
	case UnauthorizedKey:
		return "unauthorized-key"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// mandatoryFields must appear in the signed part, or Guix treats the narinfo
// as unsigned.
var mandatoryFields = []string{"StorePath", "NarHash", "References"}

// SignField signs body, the narinfo text that will precede its "Signature:"
// line, and
// returns the field value `1;<host>;<base64>` exactly as `guix publish`
// writes it: the base64 of the advanced form of
// `(signature (data (flags rfc6979) (hash sha256 #..#)) (sig-val (ecdsa (r #..#) (s #..#))) <public-key>)`.
func SignField(body []byte, host string, k *SecretKey) (string, error) {
	if host == "" || strings.ContainsAny(host, ";\r\n") {
		return "", fmt.Errorf("sign narinfo: %w: %q", ErrBadHost, host)
	}
	h := sha256.Sum256(body)
	r, s := signDigest(k.D, h)
	sig := sexp.List{sexp.Atom("signature"), dataSexp(h), sexp.List{
		sexp.Atom("sig-val"), sexp.List{
			sexp.Atom("ecdsa"),
			sexp.List{sexp.Atom("r"), sexp.Atom(unsignedMPI(r[:]))},
			sexp.List{sexp.Atom("s"), sexp.Atom(unsignedMPI(s[:]))},
		},
	}, k.Public.sexp()}
	payload := toText(sexp.Advanced(sig))
	return "1;" + host + ";" + base64.StdEncoding.EncodeToString(payload), nil
}

// dataSexp is what Guix signs for a SHA-256 digest.
func dataSexp(h [32]byte) sexp.List {
	return sexp.List{sexp.Atom("data"),
		sexp.List{sexp.Atom("flags"), sexp.Atom("rfc6979")},
		sexp.List{sexp.Atom("hash"), sexp.Atom("sha256"), sexp.Atom(h[:])},
	}
}

// VerifyField checks field, the value of a narinfo's Signature line (after
// "Signature: ", without the line end), against body, every byte before the
// first "Signature:" in the narinfo, and acl. The checks run in the order of
// Guix's signature-case: signature present, well-formed, key authorized,
// hash equal to SHA-256(body), ECDSA signature valid.
//
// Two deliberate differences: the signed hash must be named sha256, and the
// signing key must be written exactly as libgcrypt writes an Ed25519 key.
// Guix would, in principle, accept other digest names or key layouts that
// nothing produces.
func VerifyField(body []byte, field string, acl *ACL) Status {
	if field == "" || !hasFields(body, mandatoryFields) {
		return Unsigned
	}
	sig, err := parseField(field)
	if err != nil {
		return CorruptSignature
	}
	return signatureStatus(sig, sha256.Sum256(body), acl)
}

// hasFields reports whether every one of names starts a line of body.
func hasFields(body []byte, names []string) bool {
	for _, name := range names {
		prefix := []byte(name + ":")
		if !bytes.HasPrefix(body, prefix) && !bytes.Contains(body, append([]byte{'\n'}, prefix...)) {
			return false
		}
	}
	return true
}

// parseField decodes `1;<host>;<base64>` into the signature s-expression the
// way Guix does: base64, then UTF-8 text whose characters are bytes.
func parseField(field string) (sexp.List, error) {
	parts := strings.Split(field, ";")
	if len(parts) != 3 {
		return nil, fmt.Errorf("signature field has %d ';'-separated parts, want 3", len(parts))
	}
	if parts[0] != "1" {
		return nil, fmt.Errorf("unsupported signature version %q", parts[0])
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("signature base64: %w", err)
	}
	payload, err := latin1FromUTF8(raw)
	if err != nil {
		return nil, err
	}
	return sexp.Parse(payload)
}

// latin1FromUTF8 is Guix's utf8->string followed by libgcrypt reading the
// string as ISO-8859-1; both fail on what they cannot represent.
func latin1FromUTF8(b []byte) ([]byte, error) {
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("signature payload is not UTF-8")
	}
	out := make([]byte, 0, len(b))
	for _, r := range string(b) {
		if r > 0xff {
			return nil, fmt.Errorf("signature payload has character %U outside ISO-8859-1", r)
		}
		out = append(out, byte(r))
	}
	return out, nil
}

// signatureStatus is Guix's %signature-status for a parsed signature.
func signatureStatus(sig sexp.List, h [32]byte, acl *ACL) Status {
	subject, data := sig.Find("public-key"), sig.Find("data")
	if subject == nil || data == nil {
		return CorruptSignature
	}
	key, err := publicKeyFromSexp(subject)
	if err != nil || !sexp.Equal(subject, key.sexp()) || !acl.Authorized(key) {
		return UnauthorizedKey
	}
	hash := data.Find("hash")
	if value, ok := hash.AtomAt(2); !ok || !bytes.Equal(value, h[:]) {
		return HashMismatch
	}
	if !validSignature(sig, data, key, h) {
		return InvalidSignature
	}
	return Valid
}

// validSignature is libgcrypt's verification of the (sig-val ...) in sig
// over data, which holds the digest h.
func validSignature(sig, data sexp.List, key PublicKey, h [32]byte) bool {
	if algo, _ := data.Find("hash").AtomAt(1); string(algo) != "sha256" {
		return false
	}
	if flags := data.Find("flags"); flags != nil && !sexp.Equal(flags, sexp.List{sexp.Atom("flags"), sexp.Atom("rfc6979")}) {
		return false
	}
	sigVal := sig.Find("sig-val")
	if len(sigVal) != 2 {
		return false
	}
	ecdsa, ok := sigVal[1].(sexp.List)
	if !ok || ecdsa.Head() != "ecdsa" {
		return false
	}
	r, err1 := mpiParam(ecdsa, "r")
	s, err2 := mpiParam(ecdsa, "s")
	return err1 == nil && err2 == nil && verifyDigest(key, h, r, s)
}
