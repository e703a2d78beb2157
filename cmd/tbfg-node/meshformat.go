package main

import (
	"fmt"
	"github.com/tbfg/tbfg-node/internal/bytesize"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tbfg/tbfg-node/mesh"
	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/node/membership"
	"github.com/tbfg/tbfg-node/scheduler"
)

// formatStatus prints a node's status for people.
func formatStatus(w io.Writer, st adminapi.Status) {
	leader := orDash(st.Leader)
	if st.Leader != "" && st.Leader == st.ID {
		leader += " (this node)"
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Node:\t%s\n", orDash(st.ID))
	fmt.Fprintf(tw, "State:\t%s\n", st.State)
	fmt.Fprintf(tw, "Leader:\t%s\n", leader)
	fmt.Fprintf(tw, "Members:\t%d (%d voters)\n", st.Members, st.Voters)
	fmt.Fprintf(tw, "Raft index:\t%d applied\n", st.AppliedIndex)
	fmt.Fprintf(tw, "Systems:\t%s\n", orDash(strings.Join(st.Systems, ", ")))
	fmt.Fprintf(tw, "Builds:\t%d running of %d\n", st.RunningBuilds, st.MaxBuilds)
	fmt.Fprintf(tw, "Load:\t%.2f on %d cores\n", st.Load1, st.Cores)
	fmt.Fprintf(tw, "Free disk:\tstore %s, data %s\n", bytesize.IEC(st.StoreFreeBytes), bytesize.IEC(st.DataFreeBytes))
	fmt.Fprintf(tw, "Substitutes:\t%s\n", orDash(st.SubstituteURL))
	if st.ConnBytes != (mesh.ConnBytes{}) {
		fmt.Fprintf(tw, "Traffic:\t%s direct, %s relayed (this node's streams, both ways)\n", bytesize.IEC(st.ConnBytes.Direct), bytesize.IEC(st.ConnBytes.Relayed))
	}
	if st.RelayedBytes > 0 {
		fmt.Fprintf(tw, "Relayed:\t%s between other members\n", bytesize.IEC(st.RelayedBytes))
	}
	fmt.Fprintf(tw, "Version:\t%s\n", st.Version)
	fmt.Fprintf(tw, "Data dir:\t%s\n", st.DataDir)
	for i, a := range st.Addresses {
		label := ""
		if i == 0 {
			label = "Addresses:"
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, a)
	}
	tw.Flush()
}

// formatNodes prints the members as a table, the leader marked with "*" and
// this node with "(self)"; last-seen times are relative to now. FORMATS are
// the replicated formats a member writes, lowest to highest: a member that
// does not gossip them (older than that) reads format 1. Below the table, a
// line for each node that takes no new builds says why.
func formatNodes(w io.Writer, nodes []adminapi.NodeView, now time.Time) error {
	if err := formatNodeTable(w, nodes, now); err != nil {
		return err
	}
	for _, n := range nodes {
		if n.NodeStatus == nil {
			continue
		}
		if why := membership.View(n.ID, *n.NodeStatus).NoBuildsReason(scheduler.PlanOptions{}); why != "" {
			if _, err := fmt.Fprintf(w, "%s takes no new builds: %s\n", n.ID, why); err != nil {
				return err
			}
		}
	}
	return nil
}

// formatNodeTable prints the table of formatNodes.
func formatNodeTable(w io.Writer, nodes []adminapi.NodeView, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSUFFRAGE\tLEADER\tCONNECTION\tSYSTEMS\tBUILDS\tLOAD\tSTORE FREE\tVERSION\tFORMATS\tLAST SEEN")
	for _, n := range nodes {
		id := n.ID
		if n.Self {
			id += " (self)"
		}
		leader := ""
		if n.Leader {
			leader = "*"
		}
		systems, builds, load, free, version, formats := "-", "-", "-", "-", "-", "-"
		if st := n.NodeStatus; st != nil {
			systems = orDash(strings.Join(st.Systems, ","))
			builds = fmt.Sprintf("%d/%d", st.RunningBuilds, st.MaxBuilds)
			load = fmt.Sprintf("%.2f/%d", st.Load1, st.Cores)
			free = bytesize.IEC(st.StoreFreeBytes)
			version, formats = orDash(st.Version), formatRange(st)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, n.Suffrage, leader, connection(n), systems, builds, load, free,
			version, formats, ago(n.LastSeen, now))
	}
	return tw.Flush()
}

// connection says how this node reaches n: direct or relayed, "-" when not
// connected; for this node itself, its reachability as AutoNAT found it.
func connection(n adminapi.NodeView) string {
	if n.Self {
		return "self (" + orDash(n.Reachability) + ")"
	}
	return orDash(n.Conn)
}

// formatRange is "1" or "1-2": the formats a member writes.
func formatRange(st *mesh.NodeStatus) string {
	hi, lo := max(st.Format, 1), max(st.MinFormat, 1)
	if lo >= hi {
		return fmt.Sprint(hi)
	}
	return fmt.Sprintf("%d-%d", lo, hi)
}

// ago says how long before now t was, "never" for nil.
func ago(t *time.Time, now time.Time) string {
	if t == nil {
		return "never"
	}
	d := now.Sub(*t)
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
