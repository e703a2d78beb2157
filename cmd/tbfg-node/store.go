package main

// storeCommands lists the "store" subcommands. Not written yet.
func storeCommands() []command { return nil }
