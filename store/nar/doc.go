// Package nar writes and reads Nix archives (NAR), the serialisation of a
// file system object (regular file, executable, symlink, directory tree) whose
// SHA-256 is a store item's NarHash.
//
// Dump archives a file tree exactly as `nix-store --dump` does; Writer builds
// an archive from a sequence of entries; HashPath, Hasher, Verify and Sum give NarHash
// ("sha256:<nix-base32>") and NarSize. Reader reads an archive from an
// untrusted stream one entry at a time, and Restore unpacks one safely.
//
// The reader accepts only the canonical form Nix writes, so an accepted
// archive re-serialises to the same bytes. Bad names, unsorted or duplicate
// entries, absurd lengths, bad padding, unknown tokens, trailing data and
// truncation are *FormatError values naming the byte offset and the entry. A
// restore writes into a temporary sibling of its target, creates every object
// relative to its parent's descriptor without following symlinks, and renames
// the result into place only when the whole archive has been checked.
//
// Restore is Linux-only (openat, renameat2). The package knows nothing about
// store paths, narinfos or signatures. DESIGN.md explains the choices.
package nar
