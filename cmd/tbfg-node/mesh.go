package main

// meshCommands lists the "mesh" subcommands. Not written yet.
func meshCommands() []command { return nil }
