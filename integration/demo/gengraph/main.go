package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/tbfg/tbfg-node/internal/drvgraph"
	"github.com/tbfg/tbfg-node/store"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gengraph:", err)
		os.Exit(1)
	}
}

// run parses args, writes the graph and lists it on out.
func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("gengraph", flag.ContinueOnError)
	var o drvgraph.Options
	storeDir := fs.String("store-dir", string(store.GuixDir), "logical store `DIR` of the derivations")
	fs.StringVar(&o.System, "system", nativeSystem(), "system `TYPE` of every derivation")
	fs.StringVar(&o.Tag, "tag", "", "`TEXT` that makes this graph's derivations distinct from other runs'")
	fs.IntVar(&o.Chain, "chain", 4, "length of the toolchain chain")
	fs.IntVar(&o.Leaves, "leaves", 24, "leaves, each on the toolchain")
	fs.IntVar(&o.Tops, "tops", 4, "tops, each on per-top leaves")
	fs.IntVar(&o.PerTop, "per-top", 6, "inputs of each top")
	fs.IntVar(&o.Sleep, "sleep", 1, "`SECONDS` every derivation sleeps")
	fs.IntVar(&o.SlowEvery, "slow-every", 6, "every `N`th leaf is slow")
	fs.IntVar(&o.SlowSleep, "slow-sleep", 6, "`SECONDS` a slow leaf sleeps")
	fs.BoolVar(&o.Fail, "fail", true, "add a derivation that fails on purpose and one that depends on it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("want one output directory, got %d arguments", fs.NArg())
	}
	o.StoreDir = store.Dir(*storeDir)
	g, err := drvgraph.New(o)
	if err != nil {
		return err
	}
	dir := fs.Arg(0)
	if err := g.Write(dir); err != nil {
		return err
	}
	return list(g, dir, out)
}

// list prints kind, file and output of every derivation of g.
func list(g *drvgraph.Graph, dir string, out io.Writer) error {
	kinds := map[store.Path]string{g.Failing: "broken", g.FailedDependent: "needs-broken"}
	for kind, ps := range map[string][]store.Path{"toolchain": g.Chain, "leaf": g.Leaves, "top": g.Tops} {
		for _, p := range ps {
			kinds[p] = kind
		}
	}
	w := bufio.NewWriter(out)
	files := g.Files(dir)
	for i, p := range g.Order {
		fmt.Fprintf(w, "%s\t%s\t%s\n", kinds[p], files[i], g.Output(p))
	}
	return w.Flush()
}

// nativeSystem is the Guix system type of this machine.
func nativeSystem() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64-linux"
	case "arm64":
		return "aarch64-linux"
	case "386":
		return "i686-linux"
	}
	return runtime.GOARCH + "-linux"
}
