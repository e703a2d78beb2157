package main

// drvCommands lists the "drv" subcommands. Not written yet.
func drvCommands() []command { return nil }
