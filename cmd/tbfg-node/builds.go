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
	}
}

// waitBatch is how many build ids one poll of --wait asks for.
const waitBatch = 500

// cmdSubmit submits each DRV, or the paths read from standard input with
// "-", and prints the build id of each; with --wait it then polls until the
// whole graph is done.
func cmdSubmit(ctx context.Context, s *stdio, args []string) error {
	fs := newFlags(s, "submit", "DRV... | -")
	cf := newClientFlags(fs, true)
	// Checking and importing a large graph takes a while; --wait itself
	// has no limit (interrupt it), only each call to the node has.
	timeout := fs.Lookup("timeout")
	timeout.DefValue, timeout.Usage = "10m0s", "give up on a call to the node after `DURATION`"
	cf.timeout = 10 * time.Minute
	wait := fs.Bool("wait", false, "wait until every build of the graph is done; exit 1 if one failed")
	poll := fs.Duration("poll", time.Second, "with --wait, ask for the builds' states every `INTERVAL`")
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
	return waitBuilds(ctx, s, cl, res, *poll, cf)
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

// waitBuilds polls the builds of res until all are done, printing each
// one that finishes; it fails if any did not succeed.
func waitBuilds(ctx context.Context, s *stdio, cl *adminapi.Client, res adminapi.SubmitResult, poll time.Duration, cf *clientFlags) error {
	pending := map[uint64]bool{}
	for _, b := range res.Builds {
		pending[b.ID] = true
	}
	var final []adminapi.BuildView
	t := time.NewTicker(poll)
	defer t.Stop()
	for len(pending) > 0 {
		done, err := pollDone(ctx, cl, pending, cf.timeout)
		if err != nil {
			return err
		}
		for _, b := range done {
			delete(pending, b.ID)
			final = append(final, b)
			if !cf.json {
				fmt.Fprintf(s.out, "%d\t%s\t%s\n", b.ID, b.State, b.Derivation)
			}
		}
		if len(pending) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d builds: %w", len(pending), ctx.Err())
		case <-t.C:
		}
	}
	if cf.json {
		if err := printJSON(s.out, final); err != nil {
			return err
		}
	}
	return failedBuilds(s.err, final)
}

// pollDone asks for the pending builds and returns those in a final state.
func pollDone(ctx context.Context, cl *adminapi.Client, pending map[uint64]bool, timeout time.Duration) ([]adminapi.BuildView, error) {
	var ids []uint64
	for id := range pending {
		ids = append(ids, id)
	}
	var done []adminapi.BuildView
	for i := 0; i < len(ids); i += waitBatch {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		builds, err := cl.Builds(cctx, adminapi.BuildQuery{IDs: ids[i:min(i+waitBatch, len(ids))]})
		cancel()
		if err != nil {
			return nil, err
		}
		for _, b := range builds {
			if finalState(b.State) {
				done = append(done, b)
			}
		}
	}
	return done, nil
}

// finalState reports whether a build in state s is done until someone
// resubmits or retries it.
func finalState(s string) bool {
	switch s {
	case "succeeded", "failed", "canceled", "failed-dependency", "available":
		return true
	}
	return false
}

// failedBuilds tells which builds did not succeed and returns exit code 1
// if any.
func failedBuilds(w io.Writer, builds []adminapi.BuildView) error {
	failed := 0
	for _, b := range builds {
		if b.State != "succeeded" && b.State != "available" {
			failed++
			fmt.Fprintf(w, "tbfg-node submit: build %d %s: %s %s\n", b.ID, b.State, b.Derivation, b.Reason)
		}
	}
	if failed > 0 {
		fmt.Fprintf(w, "tbfg-node submit: %d of %d builds did not succeed\n", failed, len(builds))
		return exitCode(1)
	}
	return nil
}

// cmdBuilds lists builds, all or those selected by --id and --state.
func cmdBuilds(ctx context.Context, s *stdio, args []string) error {
	fs := newFlags(s, "builds", "")
	cf := newClientFlags(fs, true)
	var ids, states stringList
	fs.Var(&ids, "id", "only build `N`, repeatable or comma-separated")
	fs.Var(&states, "state", "only builds in `STATE` (queued, allocated, running, …), repeatable")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	q, err := adminapi.ParseBuildQuery(map[string][]string{"id": ids, "state": states})
	if err != nil {
		return err
	}
	cl, ctx, cancel := cf.client(ctx)
	defer cancel()
	defer cl.Close()
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
