// Command tbfg-node runs a node of the Tiny Build Farm for Guix (init, join,
// run, leave), talks to the running node through its admin socket (status,
// nodes, submit, builds, acl, authorize), and is the user's toolbox for the
// farm's formats: store items and NARs, derivations, signing keys and narinfos.
//
// init, join and run read a settings file (internal/flagfile): by default
// /etc/tbfg/config.toml as root, else $XDG_CONFIG_HOME/tbfg/config.toml, if
// it exists; --config FILE or off. Its keys are the flag names of the three
// (a key only one of them has is skipped by the others), and flags win.
// config show prints the settings in effect and where each came from;
// config example prints a commented file.
//
// The man page (tbfg-node man), the bash completion (tbfg-node completion)
// and the example settings are generated from the commands' own flag sets,
// which flagSetOf finds by running a command with -h, so they cannot go
// stale. version (and --version) prints what internal/version says.
//
// This package only parses flags and arguments, handles signals and formats
// output; the work is done by the library packages.
package main
