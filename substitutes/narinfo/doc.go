// Package narinfo parses and prints narinfo files in Guix's modern layout, Guix's
// old layout and Nix's layout, and signs and verifies them.
//
// The signed part of a Guix narinfo is kept verbatim, so a narinfo that was read
// and served again verifies again.
package narinfo
