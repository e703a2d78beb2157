// Package substitutes owns what crosses the wire between a build farm node and a
// substitute client: narinfo files, signing keys and signatures (Guix's libgcrypt
// s-expressions and Nix's ed25519 Sig lines), the HTTP substitute server (the
// `guix publish` protocol) and its DNS-SD advertisement.
//
// It depends on store for store paths and NAR hashes, and knows nothing about
// Raft or scheduling. The work lives in subpackages: sexp (libgcrypt
// s-expressions), pki (Guix keys, ACLs and signatures), nixkey (Nix keys and
// signatures), narinfo (the narinfo file in Guix's and Nix's layouts), publish
// (the HTTP server), narcache (compressed NARs on disk under a size limit) and
// dnssd (the _guix_publish._tcp advertisement).
package substitutes
