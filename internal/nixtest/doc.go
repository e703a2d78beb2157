// Package nixtest runs the real Nix 2.8 (Debian's nix-bin) in tests: offline,
// with its own configuration, home and cache, against a private store whose
// logical directory (/gnu/store or /nix/store) is backed by a directory under the
// test's temporary directory. It is how the project checks its formats against
// an independent implementation.
//
// When Nix is missing the test is skipped with a message naming the Debian
// package, except under CI (CI=true), where it fails instead.
package nixtest
