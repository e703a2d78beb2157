// Package sexp reads and writes libgcrypt s-expressions in their canonical,
// advanced (text) and transport forms, as used by Guix for keys, ACLs and
// signatures.
//
// Input is untrusted: the parser bounds nesting depth and token lengths and
// names the offset of every error.
package sexp
