package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/tbfg/tbfg-node/store/nar"
)

// storeCommands lists the "store" subcommands: NAR archives of file trees.
func storeCommands() []command {
	return []command{
		{name: "store dump", summary: "write the NAR of PATH to standard output", run: storeDump},
		{name: "store hash", summary: "print the NarHash (sha256:<nix32>) of PATH", run: storeHash},
		{name: "store restore", summary: "unpack a NAR from standard input as DIR", run: storeRestore},
	}
}

// storeArg parses fs from args (see parseFlags) and returns its single
// positional argument.
func storeArg(fs *flag.FlagSet, args []string) (string, error) {
	if err := parseFlags(fs, args); err != nil {
		return "", err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return "", exitCode(2)
	}
	return fs.Arg(0), nil
}

func storeDump(_ context.Context, s *stdio, args []string) error {
	fs := newFlags(s, "store dump", "PATH")
	path, err := storeArg(fs, args)
	if err != nil {
		return err
	}
	return nar.Dump(s.out, path)
}

func storeHash(_ context.Context, s *stdio, args []string) error {
	fs := newFlags(s, "store hash", "PATH")
	size := fs.Bool("size", false, "also print the NarSize in bytes, on a second line")
	path, err := storeArg(fs, args)
	if err != nil {
		return err
	}
	sum, err := nar.HashPath(path)
	if err != nil {
		return err
	}
	fmt.Fprintln(s.out, sum.NarHash())
	if *size {
		fmt.Fprintln(s.out, sum.Size)
	}
	return nil
}

func storeRestore(_ context.Context, s *stdio, args []string) error {
	fs := newFlags(s, "store restore", "DIR")
	maxFile := fs.Int64("max-file-size", nar.DefaultMaxFileSize, "largest `bytes` of one file accepted")
	dir, err := storeArg(fs, args)
	if err != nil {
		return err
	}
	nr := nar.NewReader(s.in)
	nr.MaxFileSize = *maxFile
	return nr.Restore(dir)
}
