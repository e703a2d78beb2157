// Package narinfo parses and prints narinfo files in Guix's modern layout, Guix's
// old layout and Nix's layout, and signs and verifies them with Guix keys (the
// Signature line, see package pki) and Nix keys (Sig lines, see package nixkey).
//
// The signed part of a Guix narinfo (everything before the first
// "Signature:") is kept verbatim in Narinfo.Signed, so a narinfo that was read
// and served again verifies again, also after a server replaces the URL blocks
// that follow the signature (SetFiles). A narinfo built from fields is printed
// in the order `guix publish` or Nix uses, so that Guix's and Nix's clients and
// this package read the same fields from it.
//
// Parsing is strict where Guix and Nix would disagree about a file (repeated
// fields, fields after the signature that look signed, "Signature:" inside a
// value, invalid UTF-8) and lenient where they agree (unknown fields are
// ignored).
package narinfo
