package main

// narinfoCommands lists the "narinfo" subcommands. Not written yet.
func narinfoCommands() []command { return nil }
