// Package nixbase32 implements the base-32 encoding Nix and Guix use in store
// paths and hashes: alphabet 0123456789abcdfghijklmnpqrsvwxyz (no e, o, u, t),
// least significant bits first, so it is not RFC 4648 base32.
package nixbase32
