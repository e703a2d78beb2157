// Package pki does what Guix's guix/pki.scm does: signing keys in the format of
// `guix archive --generate-key`, the /etc/guix/acl file, and narinfo signatures.
//
// Guix keys are ECDSA over the Ed25519 curve (libgcrypt's
// (ecdsa (curve Ed25519) (flags rfc6979))), not EdDSA: the secret is a plain
// scalar, the digest is cut to 253 bits, r is the affine Edwards x of k·G, and k
// comes from RFC 6979. Signatures made here verify in libgcrypt and vice versa.
package pki
