// Package substitutes owns what crosses the wire between a build farm node and a
// substitute client: narinfo files, signing keys and signatures (Guix's libgcrypt
// s-expressions and Nix's ed25519 Sig lines), and, in later work, the HTTP
// substitute server and its DNS-SD advertisement.
//
// It depends on store for store paths and NAR hashes, and knows nothing about
// Raft or scheduling. The formats live in subpackages: sexp (libgcrypt
// s-expressions), pki (Guix keys, ACLs and signatures), nixkey (Nix keys and
// signatures) and narinfo (the narinfo file in Guix's and Nix's layouts).
// dnssd advertises the substitute server as _guix_publish._tcp, and narcache
// keeps compressed NARs on disk under a size limit.
package substitutes
