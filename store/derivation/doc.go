// Package derivation parses and prints the ATerm Derive(...) format byte for byte,
// and computes hashDerivationModulo, output paths and the .drv file's own store path
// as Guix and Nix do.
//
// Input derivations are reached through a Loader supplied by the caller, so the
// package never reads a store by itself.
package derivation
