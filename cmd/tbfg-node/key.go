package main

// keyCommands lists the "key" subcommands. Not written yet.
func keyCommands() []command { return nil }
