// Package testdir gives tests temporary directories that may end up holding
// read-only trees, such as store items as Nix, Guix and the built-in store
// leave them (directories 0555), and that still go away at the end of the
// test. testing.T.TempDir alone cannot remove such a tree for a user other
// than root, who may write to any directory.
package testdir
