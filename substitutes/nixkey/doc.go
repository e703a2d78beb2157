// Package nixkey handles Nix's signing keys (`name:base64` files) and the
// ed25519 `Sig: name:base64` signatures Nix puts on narinfos, computed over the
// fingerprint `1;<path>;sha256:<nix32>;<size>;<comma-joined references>`.
package nixkey
