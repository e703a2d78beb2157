// Package flagfile reads a settings file whose keys are the flag names of a
// command, and applies it to that command's flag.FlagSet: the order is
// defaults < file < command line, and the file's values go through the same
// flag.Value.Set as the command line's, so they are checked by the same code.
//
// The file is TOML (so it can carry comments) or, for files written before
// TOML was accepted, a JSON object. A file is JSON when its name ends in
// ".json" or its first character other than white space is '{' (which no
// TOML document can start with); otherwise it is TOML. Its top level holds
// only keys and values, no tables: a string, number or boolean as the flag
// would take it, and an array of them for a repeatable flag (one whose
// flag.Value is a slice). Errors name the file, the line and the key.
//
// It also writes what a command's flags say about themselves: a commented
// example file built from the usage texts and defaults, so it never goes
// stale. It knows nothing of tbfg-node's own flags.
package flagfile
