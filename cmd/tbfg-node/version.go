package main

import (
	"context"
	"fmt"

	"github.com/tbfg/tbfg-node/internal/version"
)

func cmdVersion(ctx context.Context, s *stdio, args []string) error {
	fs := newFlags(s, "version", "")
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(s.out, version.Get())
	}
	_, err := fmt.Fprintln(s.out, version.Get().String())
	return err
}
