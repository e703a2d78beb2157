package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tbfg/tbfg-node/node/adminapi"
)

// buildCommands lists the commands that submit and list builds.
func buildCommands() []command {
	return []command{
		{name: "submit", summary: "submit derivations (and their .drv closures) for building", run: cmdSubmit},
		{name: "builds", summary: "list the builds of the mesh", run: cmdBuilds},
		{name: "log", summary: "print a build's log, from whichever node holds it", run: cmdLog},
		{name: "cancel", summary: "cancel builds that have not finished", run: cmdCancel},
		{name: "retry", summary: "re-queue failed or canceled builds (and what failed because of them)", run: cmdRetry},
	}
}

// cmdSubmit submits each DRV, or the paths read from standard input with
// "-", and prints the build id of each; with --wait it then follows the
// builds until the whole graph is done (wait.go).
func cmdSubmit(ctx context.Context, s *stdio, args []string) error {
	fs := newFlags(s, "submit", "DRV... | -")
	cf := newClientFlags(fs, true)
	// Checking and importing a large graph takes a while; --wait itself
	// has no limit (interrupt it), only each call to the node has.
	timeout := fs.Lookup("timeout")
	timeout.DefValue, timeout.Usage = "10m0s", "give up on a call to the node after `DURATION`"
	cf.timeout = 10 * time.Minute
	wait := fs.Bool("wait", false, "follow the builds until the whole graph is done; exit 1 if one did not succeed")
	var req adminapi.SubmitRequest
	prio := fs.Int("priority", 0, "priority of the builds (higher first)")
	fs.BoolVar(&req.Force, "force", false, "build even if the outputs are available or known to fail")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	drvs, err := drvArgs(s.in, fs.Args())
	if err != nil {
		return err
	}
	if len(drvs) == 0 {
		fs.Usage()
		return exitCode(2)
	}
	req.Derivations, req.Priority, req.Submitter = drvs, int32(*prio), submitter()
	cl := adminapi.NewClient(cf.dataDir)
	defer cl.Close()
	sctx, cancel := context.WithTimeout(ctx, cf.timeout)
	res, err := cl.Submit(sctx, req)
	cancel()
	if err != nil {
		return err
	}
	if !*wait {
		return printSubmitted(s.out, res, cf.json)
	}
	if !cf.json {
		printSubmitted(s.out, res, false)
	}
	return waitBuilds(ctx, s, cl, res, cf)
}

// drvArgs returns the DRV arguments, reading one per line from in for "-".
// File names are made absolute, since the node resolves them.
func drvArgs(in io.Reader, args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		if a != "-" {
			out = append(out, absDrv(a))
			continue
		}
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" {
				out = append(out, absDrv(line))
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("read derivations from standard input: %w", err)
		}
	}
	return out, nil
}

// absDrv makes a relative file name absolute; store paths are absolute.
func absDrv(a string) string {
	if abs, err := filepath.Abs(a); err == nil {
		return abs
	}
	return a
}

// submitter names the user who submits, for status pages.
func submitter() string {
	host, _ := os.Hostname()
	user := os.Getenv("USER")
	if user == "" {
		user = fmt.Sprintf("uid %d", os.Getuid())
	}
	return user + "@" + host
}

// printSubmitted prints the id of each requested derivation's build, or the
// whole result as JSON.
func printSubmitted(w io.Writer, res adminapi.SubmitResult, asJSON bool) error {
	if asJSON {
		return printJSON(w, res)
	}
	for _, b := range res.Roots {
		fmt.Fprintf(w, "%d\t%s\t%s\n", b.ID, b.State, b.Derivation)
	}
	return nil
}

// cmdBuilds lists builds, all or those selected by --id and --state, as
// this node's replica knows them; with --index, once it has applied that
// Raft index.
func cmdBuilds(ctx context.Context, s *stdio, args []string) error {
	fs := newFlags(s, "builds", "")
	cf := newClientFlags(fs, true)
	var ids, states stringList
	fs.Var(&ids, "id", "only build `N`, repeatable or comma-separated")
	fs.Var(&states, "state", "only builds in `STATE` (queued, allocated, running, …), repeatable")
	var at adminapi.ReadAt
	fs.Uint64Var(&at.Index, "index", 0, "answer once this node has applied Raft index `N` (the index of submit --json, on any node)")
	fs.DurationVar(&at.Wait, "index-wait", adminapi.DefaultWait, "with --index, wait at most `DURATION` for it")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	q := adminapi.BuildQuery{States: states}
	var err error
	if q.IDs, err = parseIDs("--id", ids); err != nil {
		return usageError(fs, err)
	}
	if at.Wait <= 0 || at.Wait > adminapi.MaxWait {
		return usageError(fs, fmt.Errorf("--index-wait %s: want a duration over 0 and at most %s", at.Wait, adminapi.MaxWait))
	}
	if at.Index > 0 {
		cf.timeout += at.Wait // the wait comes on top of the call
	}
	cl, ctx, cancel := cf.client(ctx)
	defer cancel()
	defer cl.Close()
	if at.Index > 0 {
		cl = cl.At(at)
	}
	builds, err := cl.Builds(ctx, q)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(s.out, builds)
	}
	return formatBuilds(s.out, builds)
}

// formatBuilds prints builds as a table for people.
func formatBuilds(w io.Writer, builds []adminapi.BuildView) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tNODE\tATTEMPT\tSUBMITTED\tDERIVATION")
	for _, b := range builds {
		state := b.State
		if b.Reason != "" {
			state += " (" + b.Reason + ")"
		}
		submitted := "-"
		if b.Submitted != nil {
			submitted = b.Submitted.Format(time.DateTime)
		}
		on := b.Node // the node it is allocated to, else the one that ran it last
		if on == "" {
			on = b.LastNode
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", b.ID, state, shortID(on), b.Attempt, submitted, b.Derivation)
	}
	return tw.Flush()
}

// shortID shortens a peer ID for tables: its last eight characters.
func shortID(id string) string {
	if id == "" {
		return "-"
	}
	if len(id) > 12 {
		return "…" + id[len(id)-8:]
	}
	return id
}
