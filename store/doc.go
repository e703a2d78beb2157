// Package store owns the names of store items: nix-base32, store paths (parse,
// validate, hash part, name rules) and the computation of store paths for text,
// source, derivation outputs and fixed-output items, exactly as Guix and Nix
// compute them.
//
// The store directory (/gnu/store for Guix, /nix/store for Nix) is always a
// parameter; nothing here hard-codes it. Subpackages hold the nix-base32
// encoding (store/nixbase32), the derivation format (store/derivation), the NAR
// archive format (store/nar) and the built-in local store (store/local).
//
// It knows nothing about networking, Raft or signatures.
package store
