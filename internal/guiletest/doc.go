// Package guiletest finds Guile with guile-gcrypt for tests that check the
// project's s-expressions, keys and signatures against libgcrypt, the library
// Guix itself uses.
//
// When Guile or guile-gcrypt is missing the test is skipped with a message
// naming the Debian packages, except under CI=true (see citest), where it fails
// instead.
package guiletest
