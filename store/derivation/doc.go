// Package derivation reads and writes .drv files and computes the store paths
// that follow from them, as Guix and Nix do.
//
// Parse and Derivation.Bytes handle the ATerm format
//
//	Derive([outputs],[inputDrvs],[inputSrcs],"system","builder",[args],[env])
//
// byte for byte: Bytes writes lists in the sorted order Guix and Nix write, and
// escapes exactly \" \\ \n \r \t, so every .drv file they produce prints back
// unchanged. Parse is strict where Nix is lenient (it rejects unknown escapes,
// duplicate keys and trailing data) and reports errors by line and column.
//
// A Hasher computes hashDerivationModulo, the output paths of a derivation
// (input-addressed, multi-output and fixed-output, including outputs that are
// still empty placeholders) and checks the paths a derivation records.
// StorePath gives the .drv file's own store path. Input derivations are reached
// through a Loader supplied by the caller; DirLoader reads them from a
// directory holding a store's items (a store, or a chroot store's real
// directory), so the package never assumes where a store lives.
package derivation
