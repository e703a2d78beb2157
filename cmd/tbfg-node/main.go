package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/tbfg/tbfg-node/node/adminapi"
)

// command is one subcommand of tbfg-node, named by one or two words
// ("store dump").
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, s *stdio, args []string) error
}

// stdio is the process's standard streams, replaced by buffers in tests.
type stdio struct {
	in       io.Reader
	out, err io.Writer
	// flagSets, when not nil, collects the flag sets newFlags makes: how
	// flagSetOf learns a command's flags.
	flagSets *[]flagSet
}

// flagSet is a command's flags and what its usage line says of its
// arguments.
type flagSet struct {
	*flag.FlagSet
	args string
}

// exitCode is returned by a command that has already told the user what went
// wrong and only needs the process to exit with code.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// commands lists every subcommand. Each group lives in its own file.
func commands() []command {
	var all []command
	all = append(all, storeCommands()...)
	all = append(all, drvCommands()...)
	all = append(all, keyCommands()...)
	all = append(all, narinfoCommands()...)
	all = append(all, meshCommands()...)
	all = append(all, buildCommands()...)
	all = append(all, gcCommands()...)
	all = append(all, configCommands()...)
	all = append(all, docCommands()...)
	sort.Slice(all, func(i, j int) bool { return all[i].name < all[j].name })
	return all
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, &stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr}, os.Args[1:])
	stop()
	os.Exit(code)
}

// run dispatches args to a subcommand and turns its error into an exit code.
func run(ctx context.Context, s *stdio, args []string) int {
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version") {
		args = append([]string{"version"}, args[1:]...)
	}
	cmd, rest := lookup(args)
	if cmd == nil {
		usage(s.err)
		if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
			return 0
		}
		fmt.Fprintf(s.err, "tbfg-node: unknown command %q\n", strings.Join(args, " "))
		return 2
	}
	err := cmd.run(ctx, s, rest)
	var code exitCode
	switch {
	case err == nil:
		return 0
	case errors.As(err, &code):
		return int(code)
	case errors.Is(err, flag.ErrHelp):
		return 0
	default:
		fmt.Fprintf(s.err, "tbfg-node %s: %v\n", cmd.name, withNextStep(err))
		return 1
	}
}

// nextStepError is an error with what the user can do about it.
type nextStepError struct {
	err  error
	step string
}

func (e *nextStepError) Error() string { return fmt.Sprintf("%v (%s)", e.err, e.step) }
func (e *nextStepError) Unwrap() error { return e.err }

// withNextStep adds to an admin API error what to do next, unless it says
// already.
func withNextStep(err error) error {
	var ns *nextStepError
	if errors.As(err, &ns) {
		return err
	}
	for _, k := range []struct {
		err  error
		step string
	}{
		{adminapi.ErrUnavailable, "wait until tbfg-node status says running, then try again"},
		{adminapi.ErrNoBuild, "tbfg-node builds lists the builds this node knows"},
		{adminapi.ErrNoLog, "a build has a log once a node has started it: see its state with tbfg-node builds --id"},
	} {
		if errors.Is(err, k.err) {
			return &nextStepError{err: err, step: k.step}
		}
	}
	return err
}

// lookup finds the longest command name that prefixes args.
func lookup(args []string) (*command, []string) {
	all := commands()
	for n := 2; n >= 1; n-- {
		if len(args) < n {
			continue
		}
		name := strings.Join(args[:n], " ")
		for i := range all {
			if all[i].name == name {
				return &all[i], args[n:]
			}
		}
	}
	return nil, nil
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: tbfg-node COMMAND [ARGS...]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-18s %s\n", c.name, c.summary)
	}
}

// newFlags returns a flag set for a subcommand whose errors and usage go to s.err.
func newFlags(s *stdio, name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet("tbfg-node "+name, flag.ContinueOnError)
	if s.flagSets != nil {
		*s.flagSets = append(*s.flagSets, flagSet{fs, args})
	}
	fs.SetOutput(s.err)
	fs.Usage = func() {
		fmt.Fprintf(s.err, "usage: tbfg-node %s [FLAGS] %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// flagSetOf returns the flags of the command name, nil if there is no such
// command. It runs the command with -h, which every command answers by
// parsing its flags and stopping, on streams that go nowhere, and keeps the
// flag set it made. So the man page, completion and example settings file
// describe the flags the commands really parse.
func flagSetOf(name string) *flag.FlagSet {
	return flagsOf(name).FlagSet
}

// flagsOf is flagSetOf with the arguments the command takes.
func flagsOf(name string) flagSet {
	cmd, _ := lookup(strings.Fields(name))
	if cmd == nil {
		return flagSet{}
	}
	var sets []flagSet
	s := &stdio{in: strings.NewReader(""), out: io.Discard, err: io.Discard, flagSets: &sets}
	_ = cmd.run(context.Background(), s, []string{"-h"})
	if len(sets) == 0 {
		return flagSet{}
	}
	return sets[0]
}

// parseFlags parses args into fs. A usage error, which fs has already printed
// with the usage text, becomes exit code 2 so that run does not print it a
// second time; -h returns flag.ErrHelp (exit 0).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return exitCode(2)
	}
	return nil
}
