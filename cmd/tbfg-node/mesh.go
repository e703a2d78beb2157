package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tbfg/tbfg-node/node"
	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/node/datadir"
)

// meshCommands lists the commands that run a node or talk to a running one.
func meshCommands() []command {
	return append([]command{
		{name: "init", summary: "create a new mesh and run its first node", run: cmdInit},
		{name: "join", summary: "join a mesh with its secret and run", run: cmdJoin},
		{name: "run", summary: "run a node set up by init or join", run: cmdRun},
		{name: "status", summary: "show the local node's status", run: cmdStatus},
		{name: "nodes", summary: "list the mesh's nodes as the local node sees them", run: cmdNodes},
		{name: "leave", summary: "remove the local node from its mesh and stop it", run: cmdLeave},
	}, aclCommands()...)
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// daemonFlags are the flags of init, join and run, bound to a node.Config.
type daemonFlags struct {
	fs         *flag.FlagSet
	cfg        node.Config
	configFile string
	listen     stringList
	noMDNS     bool
	noAdvert   bool
	logLevel   slog.Level
}

// sizeFlag is a size in bytes with an optional K, M, G or T suffix.
type sizeFlag int64

func (f *sizeFlag) String() string { return strconv.FormatInt(int64(*f), 10) }

func (f *sizeFlag) Set(v string) error {
	n, err := node.ParseSize(v)
	*f = sizeFlag(n)
	return err
}

func newDaemonFlags(fs *flag.FlagSet) *daemonFlags {
	d := &daemonFlags{fs: fs, cfg: node.DefaultConfig()}
	c := &d.cfg
	fs.StringVar(&d.configFile, "config", "", "read settings from TOML or JSON `FILE` (keys are flag names; flags win; default /etc/tbfg/config.toml as root, else $XDG_CONFIG_HOME/tbfg/config.toml, if it exists; off for none)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "node state `DIR`")
	fs.Var(&d.listen, "listen", "libp2p listen `ADDR`, multiaddr or IP:PORT, repeatable (default "+c.Listen[0]+")")
	fs.Var((*stringList)(&c.Interfaces), "interface", "announce addresses of network interface `NAME` only, repeatable")
	fs.Var((*stringList)(&c.Peers), "peer", "dial member `MULTIADDR` (…/p2p/ID) at start, repeatable")
	fs.BoolVar(&c.Voter, "voter", c.Voter, "may become a Raft voter (false for machines that come and go)")
	fs.IntVar(&c.BootstrapExpect, "bootstrap-expect", 0, "bootstrap a new mesh once `N` fresh nodes started with it see each other")
	fs.StringVar(&c.RaftProfile, "raft-profile", c.RaftProfile, "Raft timing: default, lan, wan or test")
	fs.DurationVar(&c.RemoveAfter, "remove-after", c.RemoveAfter, "remove members silent for `DURATION`")
	fs.DurationVar(&c.GossipInterval, "gossip-interval", c.GossipInterval, "publish this node's status every `INTERVAL`")
	fs.BoolVar(&d.noMDNS, "no-mdns", false, "do not discover nodes by mDNS")
	fs.StringVar(&c.Relay, "relay", c.Relay, "relay connections between members behind NAT: auto (when publicly reachable), on or off")
	fs.Var((*stringList)(&c.PublicRanges), "public-range", "treat addresses in `CIDR` as public, for networks whose public side uses reserved ranges (carrier-grade NAT, a lab), repeatable")
	fs.IntVar(&c.MaxBuilds, "max-builds", 0, "builds run at once (default the number of cores)")
	fs.Float64Var(&c.MaxLoad, "max-load", 0, "take no new builds while the 1-minute load average is at least `LOAD` (default no limit)")
	fs.Var((*stringList)(&c.Systems), "system", "system type built for, repeatable (default from the machine)")
	fs.Var((*stringList)(&c.Features), "feature", "system feature `NAME` offered to builds (e.g. kvm), repeatable")
	fs.StringVar(&c.StoreDir, "store-dir", c.StoreDir, "logical store `DIR` of the node's store (its items live in DATA-DIR/store)")
	fs.StringVar(&c.Executor, "executor", c.Executor, "how builds run: builtin (no daemon), nix, or guix (the local guix-daemon)")
	fs.StringVar(&c.Guix, "guix", "", "guix `COMMAND` the guix executor runs (default guix from PATH)")
	fs.Var((*stringList)(&c.GuixSubstituteURLs), "guix-substitute-url", "substitute server `URL` guix-daemon may use after this node's own, repeatable")
	fs.StringVar(&c.NixStore, "nix-store", "", "Nix store `URI` the nix executor builds in (default Nix's own)")
	fs.DurationVar(&c.BuildTimeout, "build-timeout", 0, "stop builds after `DURATION` (default no limit)")
	fs.DurationVar(&c.MaxSilent, "max-silent", 0, "stop builds silent for `DURATION` (default no limit)")
	fs.StringVar(&c.BuildUIDs, "build-uids", "", "host uids `FIRST-LAST` builtin builds run as, one each (root only; default "+node.DefaultBuildUIDs+")")
	fs.Var((*sizeFlag)(&c.BuildMemory), "build-memory", "bound each builtin build's memory to `SIZE` bytes, with K, M, G or T, through cgroup v2 (default no limit)")
	fs.StringVar(&c.SubstituteListen, "substitute-listen", c.SubstituteListen, "substitute server `ADDR` (IP:PORT or :PORT; off for none)")
	fs.StringVar(&c.HTTPListen, "http-listen", c.HTTPListen, "status pages, JSON API and metrics on `ADDR` (IP:PORT; off for none)")
	fs.BoolVar(&d.noAdvert, "no-advertise", false, "do not advertise the substitute server by DNS-SD (implied by --no-mdns)")
	fs.Var((*sizeFlag)(&c.NARCacheSize), "nar-cache-size", "bound the NAR cache to `SIZE` bytes, with K, M, G or T (default 10G)")
	fs.IntVar(&c.Replicas, "replicas", c.Replicas, "copy every store item until `N` members hold it (1: only the builder's copy)")
	fs.Var((*sizeFlag)(&c.StoreMax), "store-max", "keep the node's store under `SIZE` bytes, with K, M, G or T, removing what the mesh can spare (default no bound)")
	fs.Var((*sizeFlag)(&c.MinFree), "min-free", "keep `SIZE` bytes free on the store's disk; below it, collect and take no new builds (default 5G)")
	fs.DurationVar(&c.GCInterval, "gc-interval", c.GCInterval, "check --store-max and --min-free every `INTERVAL`")
	fs.DurationVar(&c.History, "history", c.History, "keep finished builds' records in the mesh state for `DURATION`; their outputs stay available")
	fs.DurationVar(&c.LogMaxAge, "log-max-age", c.LogMaxAge, "keep successful builds' logs for `DURATION`, failed builds' four times as long")
	fs.Var((*sizeFlag)(&c.LogMaxSize), "log-max-size", "bound all build logs together to `SIZE` bytes, with K, M, G or T (default 1G)")
	fs.TextVar(&d.logLevel, "log-level", slog.LevelInfo, "log `LEVEL`: debug, info, warn or error")
	return d
}

// config returns the flags as a node.Config for mode, logging to w.
func (d *daemonFlags) config(mode node.Mode, w io.Writer) node.Config {
	c := d.cfg
	c.Mode = mode
	if len(d.listen) > 0 {
		c.Listen = d.listen
	}
	c.MDNS = !d.noMDNS
	c.Advertise = !d.noAdvert && !d.noMDNS
	c.Logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: d.logLevel}))
	return c
}

// parse parses the command line, then the settings file (see loadConfig).
func (d *daemonFlags) parse(args []string) error {
	if err := parseNoArgs(d.fs, args); err != nil {
		return err
	}
	_, _, err := loadConfig(d.fs, d.configFile)
	return err
}

// parseNoArgs parses args into fs and rejects positional arguments.
func parseNoArgs(fs *flag.FlagSet, args []string) error {
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError(fs, fmt.Errorf("unexpected argument %q: this command takes flags only", fs.Arg(0)))
	}
	return nil
}

// cmdInit creates a mesh and, unless --no-run, keeps running as its first
// node. With --no-run it stops once the one-node cluster is bootstrapped;
// tbfg-node run starts it again later (e.g. from a service manager).
func cmdInit(ctx context.Context, s *stdio, args []string) error {
	fs := newFlags(s, "init", "")
	d := newDaemonFlags(fs)
	noRun := fs.Bool("no-run", false, "stop once the mesh is created instead of running")
	if err := d.parse(args); err != nil {
		return err
	}
	n, err := node.New(d.config(node.ModeInit, s.err))
	if err != nil {
		return err
	}
	fmt.Fprintf(s.out, "Creating a new mesh in %s.\n", n.DataDir())
	fmt.Fprintf(s.out, "Mesh secret (also in %s/%s, keep it private):\n  %s\n", n.DataDir(), datadir.SecretFile, n.Secret())
	fmt.Fprintf(s.out, "To add a machine on this LAN, run on it:\n  tbfg-node join --secret %s\n", n.Secret())
	fmt.Fprintln(s.out, "From another network, add --peer with one of the addresses below.")
	return runNode(ctx, s, n, *noRun)
}

// cmdJoin joins a mesh, or runs a node that joined it before. With
// --no-run it stops once it is a member, for a service manager to run it.
func cmdJoin(ctx context.Context, s *stdio, args []string) error {
	fs := newFlags(s, "join", "")
	d := newDaemonFlags(fs)
	fs.StringVar(&d.cfg.Secret, "secret", "", "mesh secret `HEX` printed by tbfg-node init")
	fs.StringVar(&d.cfg.SecretFile, "secret-file", "", "read the mesh secret from `FILE`")
	noRun := fs.Bool("no-run", false, "stop once a member of the mesh instead of running")
	if err := d.parse(args); err != nil {
		return err
	}
	n, err := node.New(d.config(node.ModeJoin, s.err))
	if err != nil {
		return err
	}
	fmt.Fprintf(s.out, "Joining the mesh from %s.\n", n.DataDir())
	return runNode(ctx, s, n, *noRun)
}

// cmdRun runs a node whose data dir init or join set up.
func cmdRun(ctx context.Context, s *stdio, args []string) error {
	fs := newFlags(s, "run", "")
	d := newDaemonFlags(fs)
	if err := d.parse(args); err != nil {
		return err
	}
	n, err := node.New(d.config(node.ModeRun, s.err))
	if err != nil {
		return err
	}
	return runNode(ctx, s, n, false)
}

// runNode runs n until ctx ends (SIGINT, SIGTERM) or it leaves the mesh,
// printing its addresses once it is a member. With stopWhenReady it stops
// there.
func runNode(ctx context.Context, s *stdio, n *node.Node, stopWhenReady bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-n.Ready():
		case <-ctx.Done():
			return
		}
		fmt.Fprintf(s.out, "Node %s is a member of the mesh, reachable at:\n", n.ID())
		for _, a := range n.Addrs() {
			fmt.Fprintf(s.out, "  %s\n", a)
		}
		if stopWhenReady {
			cancel()
		}
	}()
	err := n.Run(ctx)
	cancel()
	wg.Wait()
	return err
}

// clientFlags are the flags of the commands that talk to a running node.
type clientFlags struct {
	dataDir string
	json    bool
	timeout time.Duration
}

func newClientFlags(fs *flag.FlagSet, withJSON bool) *clientFlags {
	c := &clientFlags{}
	fs.StringVar(&c.dataDir, "data-dir", configuredDataDir(), "data `DIR` of the local node")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "give up after `DURATION`")
	if withJSON {
		fs.BoolVar(&c.json, "json", false, "print JSON for scripts")
	}
	return c
}

func (c *clientFlags) client(ctx context.Context) (*adminapi.Client, context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	return adminapi.NewClient(c.dataDir), ctx, cancel
}

func cmdStatus(ctx context.Context, s *stdio, args []string) error {
	return query(ctx, s, "status", args, (*adminapi.Client).Status,
		func(w io.Writer, st adminapi.Status) error { formatStatus(w, st); return nil })
}

func cmdNodes(ctx context.Context, s *stdio, args []string) error {
	return query(ctx, s, "nodes", args, (*adminapi.Client).Nodes,
		func(w io.Writer, nodes []adminapi.NodeView) error { return formatNodes(w, nodes, time.Now()) })
}

// query runs a read-only command: it asks the local node with get and prints
// the answer as JSON (--json) or with format.
func query[T any](ctx context.Context, s *stdio, name string, args []string,
	get func(*adminapi.Client, context.Context) (T, error), format func(io.Writer, T) error) error {
	fs := newFlags(s, name, "")
	cf := newClientFlags(fs, true)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	cl, ctx, cancel := cf.client(ctx)
	defer cancel()
	defer cl.Close()
	v, err := get(cl, ctx)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(s.out, v)
	}
	return format(s.out, v)
}

func cmdLeave(ctx context.Context, s *stdio, args []string) error {
	fs := newFlags(s, "leave", "")
	cf := newClientFlags(fs, false)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	cl, ctx, cancel := cf.client(ctx)
	defer cancel()
	defer cl.Close()
	res, err := cl.Leave(ctx)
	if errors.Is(err, adminapi.ErrUnavailable) {
		return &nextStepError{err: err, step: "wait until it runs, or stop it with SIGTERM"}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(s.out, "Node %s left the mesh and stops.\n", res.ID)
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
