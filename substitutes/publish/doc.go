// Package publish is the read-only HTTP substitute server, speaking the
// protocol of `guix publish` that guix-daemon and Nix download substitutes
// with:
//
//	GET/HEAD /nix-cache-info             StoreDir, WantMassQuery: 1, Priority
//	GET/HEAD /<hash>.narinfo             the builder's signed narinfo
//	GET/HEAD /nar/<base>                 the NAR, uncompressed
//	GET/HEAD /nar/<compression>/<base>   the NAR, gzip or zstd
//	GET/HEAD /log/<base>                 the build log of a derivation
//	GET/HEAD /signing-key.pub            this node's Guix public key
//
// The server reads store items through a Source: the signed narinfo as its
// builder made it, and the uncompressed NAR, which may come from a remote
// holder and is not trusted. A narinfo is served verbatim in its signed part;
// only the URL blocks after the signature are replaced (narinfo.SetFiles) so
// that they point at this server, so both Guix's Signature and Nix's Sig lines
// still verify. A narinfo in Guix's old layout, whose URL blocks are signed, is
// served unchanged.
//
// # Compressed NARs and FileSize
//
// Every narinfo offers the uncompressed NAR, with FileSize equal to NarSize, so
// a narinfo never waits for compression. A compressed variant is listed only
// once it sits in the on-disk NAR cache, because only then is its FileSize
// known. The first narinfo request for an item that lacks a variant queues a
// job for a bounded pool of workers, which reads the NAR from the Source once
// and writes the uncompressed NAR and every missing compressed variant into
// the cache; later narinfos list them. (`guix publish --cache` answers 404
// until it has baked the NAR; here the client gets the uncompressed NAR at
// once instead.) The uncompressed form is cached too, so a hot NAR is sent
// from a file with sendfile, at the speed of a static file server.
//
// URL blocks are printed uncompressed first, then the compressions in the
// configured order: Nix reads only the last block, Guix chooses among all.
// A request for a NAR that is not in the cache (never queued, or evicted since
// its narinfo was served) is answered by streaming from the Source,
// compressing on the fly when asked, and the result is stored in the cache as
// it streams.
//
// lzip is not offered: it would need a Go implementation outside the
// module's dependencies, and Guix reads gzip always and zstd since 1.2.
//
// # Verification
//
// A NAR read from the Source is checked against the narinfo's NarSize and
// NarHash as it streams. Its last byte is held back until the whole stream
// has been checked; a NAR that is too long, too short or has the wrong hash
// is cut off before that byte, so a client sees a broken transfer and never a
// complete wrong NAR, and nothing of it reaches the cache.
//
// # Requests
//
// Hash parts must be 32 nix-base32 characters, base names must satisfy
// store.ValidateBase and compressions come from a fixed set, all checked
// before the Source is asked anything; request URIs are limited to MaxURILen
// bytes. Nothing in a request becomes a file name except through
// narcache.Key, whose keys cannot leave the cache directory, and DirSource,
// which joins only validated base names.
//
// A fast path in front of net/http answers /nix-cache-info, memoised
// narinfos and the NARs the cache holds itself, the NARs with sendfile from
// the cache's files, which were verified before they were committed; it
// hands each connection to net/http at its first other request (DESIGN.md).
// A NAR not in the cache always goes through net/http and the verifier.
//
// Byte ranges are not served: a Range header is ignored and the whole NAR
// sent with 200, on both paths (neither Guix nor Nix asks for ranges).
//
// Answers carry Cache-Control max-age (Config.TTL for hits, Config.NegativeTTL
// for unknown items, like guix publish's --ttl and --negative-ttl) and
// Content-Length when the size is known.
//
// # Observer
//
// Config.Observer, when set, hears of every answer (its kind, status and
// body bytes), from the fast path and net/http alike, and of every NAR sent
// from the cache or not: the node turns them into metrics. The interface is
// defined here so that the package needs nothing of the node.
//
// The package knows nothing about where a Source gets its narinfos and NARs
// (the local store, the replicated state, peers over libp2p) or about DNS-SD
// (package dnssd advertises the server). DESIGN.md explains the choices.
package publish
