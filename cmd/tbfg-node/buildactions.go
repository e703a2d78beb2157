package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/tbfg/tbfg-node/node/adminapi"
)

// cmdLog prints a build's log, from whichever member holds it; with
// --follow, as it grows until the build ends.
func cmdLog(ctx context.Context, s *stdio, args []string) error {
	fs := newFlags(s, "log", "ID")
	cf := newClientFlags(fs, false)
	follow := fs.Bool("follow", false, "keep printing while the build runs, until it ends (the call has no time limit)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError(fs, fmt.Errorf("want one build id, got %d arguments", len(pos)))
	}
	ids, err := parseIDs("build id", pos)
	if err != nil || len(ids) != 1 {
		return usageError(fs, fmt.Errorf("build id %q: want one build number", pos[0]))
	}
	cl := adminapi.NewClient(cf.dataDir)
	defer cl.Close()
	if !*follow {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cf.timeout)
		defer cancel()
	}
	return cl.Log(ctx, ids[0], *follow, s.out)
}

// cmdCancel cancels builds that have not finished.
func cmdCancel(ctx context.Context, s *stdio, args []string) error {
	return buildAction(ctx, s, "cancel", args, (*adminapi.Client).Cancel, func(w io.Writer, b adminapi.BuildView) {
		if b.State != "canceled" {
			fmt.Fprintf(w, "tbfg-node cancel: build %d had already finished (%s); nothing to cancel\n", b.ID, b.State)
		}
	})
}

// cmdRetry re-queues builds that failed or were canceled.
func cmdRetry(ctx context.Context, s *stdio, args []string) error {
	return buildAction(ctx, s, "retry", args, (*adminapi.Client).Retry, func(w io.Writer, b adminapi.BuildView) {
		switch {
		case b.State == "failed-dependency" && b.Cause != 0:
			fmt.Fprintf(w, "tbfg-node retry: build %d needs build %d, which failed: that one was re-queued, and %d follows once it succeeds\n",
				b.ID, b.Cause, b.ID)
		case finalState(b.State):
			fmt.Fprintf(w, "tbfg-node retry: build %d has not failed (%s); nothing to retry\n", b.ID, b.State)
		}
	})
}

// buildAction runs cancel or retry: it sends the build ids of the command
// line and prints each build's state after, as submit prints them, with
// note saying on standard error what happened to those it did not change
// as asked.
func buildAction(ctx context.Context, s *stdio, name string, args []string,
	do func(*adminapi.Client, context.Context, []uint64) (adminapi.ActionResult, error), note func(io.Writer, adminapi.BuildView)) error {
	fs := newFlags(s, name, "ID...")
	cf := newClientFlags(fs, true)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	ids, err := parseIDs("build id", pos)
	if err != nil {
		return usageError(fs, err)
	}
	if len(ids) == 0 {
		return usageError(fs, &nextStepError{err: errors.New("no build id given"), step: "tbfg-node builds lists them"})
	}
	cl, ctx, cancel := cf.client(ctx)
	defer cancel()
	defer cl.Close()
	res, err := do(cl, ctx, ids)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(s.out, res)
	}
	for _, b := range res.Builds {
		fmt.Fprintf(s.out, "%d\t%s\t%s\n", b.ID, b.State, b.Derivation)
		note(s.err, b)
	}
	return nil
}

// parseIDs reads build ids, each argument one or more, comma-separated.
func parseIDs(what string, args []string) ([]uint64, error) {
	var ids []uint64
	for _, a := range args {
		for _, f := range strings.Split(a, ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			id, err := strconv.ParseUint(f, 10, 64)
			if err != nil || id == 0 {
				return nil, &nextStepError{err: fmt.Errorf("%s %q: want a build number", what, f), step: "tbfg-node builds lists them"}
			}
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// parseInterspersed parses args into fs, with flags before, between or
// after the positional arguments (tbfg-node log 12 --follow), and returns
// the positional ones. After "--" every argument is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// usageError reports a bad flag value or argument with its next step,
// by default -h, and returns exit code 2.
func usageError(fs *flag.FlagSet, err error) error {
	var ns *nextStepError
	if !errors.As(err, &ns) {
		err = &nextStepError{err: err, step: "see " + fs.Name() + " -h"}
	}
	fmt.Fprintf(fs.Output(), "%s: %v\n", fs.Name(), err)
	return exitCode(2)
}
