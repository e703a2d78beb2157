// Package nixkey handles Nix's signing keys and signatures: the `name:base64`
// key files of `nix key generate-secret` (a 64-byte ed25519 secret key) and
// `nix key convert-secret-to-public` (a 32-byte public key), and the ed25519
// `Sig: name:base64` signatures Nix puts on narinfos, computed over the
// fingerprint `1;<path>;sha256:<nix32>;<size>;<comma-joined references>`.
//
// As in Nix, a signature is checked only against trusted keys of the same name.
package nixkey
