// Package sexp reads and writes libgcrypt s-expressions in their canonical,
// advanced (text) and transport forms, as used by Guix for keys, ACLs and
// signatures.
//
// Advanced prints byte for byte what libgcrypt's gcry_sexp_sprint prints in
// GCRYSEXP_FMT_ADVANCED mode, which is what Guix writes; a test compares the
// two on random input.
//
// Input is untrusted: the parser bounds nesting depth and input size and
// names the offset of every error.
package sexp
