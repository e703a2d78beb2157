// Package pki does what Guix's guix/pki.scm does: signing keys in the format of
// `guix archive --generate-key`, the /etc/guix/acl file, and narinfo signatures
// (the `Signature: 1;<host>;<base64>` field and its checks, in the order of
// Guix's signature-case).
//
// Guix keys are ECDSA over the Ed25519 curve (libgcrypt's
// (ecdsa (curve Ed25519) (flags rfc6979))), not EdDSA: the secret is a plain
// scalar, the digest is cut to 253 bits, r is the affine Edwards x of k·G, and k
// comes from RFC 6979. Signatures made here are byte-for-byte those libgcrypt
// makes for the same key and body, and verify in libgcrypt and vice versa.
//
// The package does not parse narinfos (package narinfo does) and does not
// handle Nix's ed25519 signatures (package nixkey does). DESIGN.md explains the
// choices.
package pki
