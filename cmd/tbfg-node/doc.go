// Command tbfg-node runs a node of the Tiny Build Farm for Guix (init, join,
// run, leave), talks to the running node through its admin socket (status,
// nodes, submit, builds, acl, authorize), and is the user's toolbox for the
// farm's formats: store items and NARs, derivations, signing keys and narinfos.
//
// This package only parses flags and arguments, handles signals and formats
// output; the work is done by the library packages.
package main
