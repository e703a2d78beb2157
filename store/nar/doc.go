// Package nar writes and reads Nix archives (NAR): a streaming writer from a file
// tree, a streaming reader, a safe restorer, and NarHash/NarSize.
//
// The reader treats its input as untrusted: bad names, unsorted or duplicate
// entries, absurd lengths and truncation are errors that say where the archive
// went wrong, and a restore never writes outside its target directory.
package nar
