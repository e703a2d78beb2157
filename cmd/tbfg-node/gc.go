package main

import (
	"context"
	"fmt"
	"github.com/tbfg/tbfg-node/internal/bytesize"
	"io"
	"text/tabwriter"

	"github.com/tbfg/tbfg-node/node/adminapi"
)

// gcCommands lists the commands about the node's store bounds.
func gcCommands() []command {
	return []command{
		{name: "gc", summary: "collect the node's store now (--dry-run: only say what would go; --free SIZE: free at least that much)", run: cmdGC},
	}
}

// cmdGC asks the local node to collect its store now and prints what it
// removed, or would remove, with sizes.
func cmdGC(ctx context.Context, s *stdio, args []string) error {
	fs := newFlags(s, "gc", "")
	cf := newClientFlags(fs, true)
	dry := fs.Bool("dry-run", false, "print what would be removed, removing nothing")
	var free sizeFlag
	fs.Var(&free, "free", "free at least `SIZE` bytes, with K, M, G or T, beyond what --store-max and --min-free ask")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	cl, ctx, cancel := cf.client(ctx)
	defer cancel()
	defer cl.Close()
	res, err := cl.GC(ctx, adminapi.GCRequest{DryRun: *dry, Free: int64(free)})
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(s.out, res)
	}
	return formatGC(s.out, res)
}

// formatGC prints one line per item, then a summary.
func formatGC(w io.Writer, res adminapi.GCResult) error {
	verb := "removed"
	if res.DryRun {
		verb = "would remove"
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, it := range res.Removed {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", bytesize.IEC(uint64(max(it.Size, 0))), it.Class, it.Path)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%s %d items, %s (store %s, asked to free %s)\n", verb, len(res.Removed),
		bytesize.IEC(uint64(max(res.Freed, 0))), bytesize.IEC(uint64(max(res.StoreSize, 0))), bytesize.IEC(uint64(max(res.Want, 0))))
	return err
}
