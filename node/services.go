package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/tbfg/tbfg-node/internal/hostinfo"
	"github.com/tbfg/tbfg-node/node/agent"
	"github.com/tbfg/tbfg-node/node/datadir"
	"github.com/tbfg/tbfg-node/node/executor"
	"github.com/tbfg/tbfg-node/node/meshsource"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/substitutes/dnssd"
	"github.com/tbfg/tbfg-node/substitutes/narcache"
	"github.com/tbfg/tbfg-node/substitutes/publish"
)

// busybox is the static shell shown to builtin builds as /bin/sh when the
// host has it (Debian's busybox-static), as Nix's sandbox-paths would.
const busybox = "/bin/busybox"

// advertiseTimeout bounds the start of the DNS-SD advertisement.
const advertiseTimeout = 10 * time.Second

// newExecutor makes the configured executor over the opened store, and the
// function that reads its outputs when they live outside that store.
func (n *Node) newExecutor() error {
	log := n.log.With("component", "executor")
	switch n.cfg.Executor {
	case ExecutorGuix:
		gx, err := executor.NewGuix(executor.GuixConfig{Command: n.cfg.Guix, Dir: store.Dir(n.cfg.StoreDir),
			SubstituteURLs: append([]string{n.cfg.ownSubstituteURL()}, n.cfg.GuixSubstituteURLs...), Logger: log})
		if err != nil {
			return fmt.Errorf("--executor guix: %w", err)
		}
		// Outputs live in the daemon's store, which the node reads directly.
		n.exec, n.outputNAR = gx, gx.OutputNAR
		return nil
	case ExecutorNix:
		nc := executor.NixConfig{Store: n.cfg.NixStore, Dir: store.Dir(n.cfg.StoreDir), Source: n.store, Logger: log}
		if _, err := os.Stat(busybox); err == nil {
			// Added to the sandbox paths of nix.conf, not replacing them.
			nc.Options = map[string]string{"extra-sandbox-paths": "/bin/sh=" + busybox}
		}
		nx, err := executor.NewNix(nc)
		if err != nil {
			return fmt.Errorf("--executor nix: %w", err)
		}
		n.exec, n.outputNAR = nx, n.nixDump
		return nil
	default:
		cfg := executor.BuiltinConfig{Store: n.store, BuildDir: filepath.Join(n.cfg.DataDir, datadir.BuildSubdir), Logger: log,
			BuildIDs: n.cfg.buildIDs(), Memory: n.cfg.BuildMemory}
		if _, err := os.Stat(busybox); err == nil {
			cfg.SandboxPaths = map[string]string{"/bin/sh": busybox}
		}
		b, err := executor.NewBuiltin(cfg)
		if err != nil {
			return fmt.Errorf("--executor builtin: %w", err)
		}
		n.exec = b
		return nil
	}
}

// nixDump streams the NAR of an output from the Nix store the nix executor
// builds in (nix store dump-path, which reads through the store, so that a
// chroot store's items are found under their real directory).
func (n *Node) nixDump(ctx context.Context, p store.Path) (io.ReadCloser, error) {
	args := []string{"--extra-experimental-features", "nix-command", "store", "dump-path"}
	if n.cfg.NixStore != "" {
		args = append(args, "--store", n.cfg.NixStore)
	}
	cmd := exec.CommandContext(ctx, "nix", append(args, string(p))...)
	r := &cmdReader{cmd: cmd}
	cmd.Stderr = &r.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("nix store dump-path %s: %w", p, err)
	}
	r.ReadCloser = out
	return r, nil
}

// cmdReader is a command's output that waits for the command on Close and
// then reports its failure with the end of its error output.
type cmdReader struct {
	io.ReadCloser
	cmd    *exec.Cmd
	stderr tailBuffer
}

func (r *cmdReader) Close() error {
	r.ReadCloser.Close()
	if err := r.cmd.Wait(); err != nil {
		return fmt.Errorf("%s: %w: %s", r.cmd, err, r.stderr.b)
	}
	return nil
}

// tailBuffer keeps the last kilobyte written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 1024 {
		t.b = t.b[len(t.b)-1024:]
	}
	return len(p), nil
}

// startSource makes the mesh source and answers the members' NAR and log
// requests. It needs the mesh started: the source names this node by its
// peer ID.
func (n *Node) startSource() error {
	src, err := meshsource.New(meshsource.Config{
		Self: n.mesh.ID(), FSM: n.fsm, Store: n.store,
		Remote: &meshsource.StreamRemote{Mesh: n.mesh, Dir: store.Dir(n.cfg.StoreDir)},
		Logs:   n.logs, Logger: n.log.With("component", "meshsource"),
	})
	if err != nil {
		return fmt.Errorf("mesh source: %w", err)
	}
	n.source = src
	return meshsource.ServeStreams(n.mesh, src, n.log.With("component", "peer-streams"))
}

func (n *Node) logDir() string { return filepath.Join(n.cfg.DataDir, datadir.LogSubdir) }

// startSubstitutes runs the substitute server on --substitute-listen and
// records its URL for gossip; the URL needs the mesh's announced addresses.
func (n *Node) startSubstitutes(ctx context.Context) error {
	if n.cfg.SubstituteListen == "" {
		return nil
	}
	cache, err := narcache.Open(filepath.Join(n.cfg.DataDir, datadir.NARCacheSubdir),
		narcache.Options{MaxBytes: n.cfg.NARCacheSize, Logger: n.log.With("component", "nar-cache")})
	if err != nil {
		return err
	}
	srv, err := publish.New(publish.Config{StoreDir: store.Dir(n.cfg.StoreDir), Source: n.source, Cache: cache,
		SigningKey: []byte(n.keys.GuixPublic()), Observer: n.metrics, Logger: n.log.With("component", "substitutes")})
	if err != nil {
		return errors.Join(fmt.Errorf("substitute server: %w", err), cache.Close())
	}
	ln, err := net.Listen("tcp", n.cfg.SubstituteListen)
	if err != nil {
		return errors.Join(fmt.Errorf("--substitute-listen: %w", err), cache.Close())
	}
	// The cache closes after the server, which writes into it until Serve
	// returns.
	n.loops.Defer("nar cache", cache.Close)
	port := ln.Addr().(*net.TCPAddr).Port
	n.substituteURL.Store(substituteURL(n.cfg.SubstituteListen, port, n.mesh.Addrs()))
	n.loops.Go("substitute server", nil, func(ctx context.Context) error { return srv.Serve(ctx, ln) })
	n.log.Info("serving substitutes", "url", n.SubstituteURL())
	n.advertise(ctx, port)
	return nil
}

// substituteURL is http://HOST:PORT of the substitute server: the listen
// address's IP, or when it listens on all addresses the first IPv4 address
// the mesh announces. "" when there is none.
func substituteURL(listen string, port int, announced []string) string {
	host, _, _ := net.SplitHostPort(listen)
	if ip, err := netip.ParseAddr(host); err == nil && !ip.IsUnspecified() {
		return "http://" + net.JoinHostPort(ip.String(), strconv.Itoa(port))
	}
	for _, a := range announced {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			continue
		}
		if ip, err := m.ValueForProtocol(ma.P_IP4); err == nil {
			return "http://" + net.JoinHostPort(ip, strconv.Itoa(port))
		}
	}
	return ""
}

// SubstituteURL is the address of this node's substitute server as it
// gossips it; "" when it runs none.
func (n *Node) SubstituteURL() string {
	s, _ := n.substituteURL.Load().(string)
	return s
}

// advertise announces the substitute server by DNS-SD unless told not to.
// A LAN without a usable interface is no reason to stop the node: the
// failure is logged.
func (n *Node) advertise(ctx context.Context, port int) {
	if !n.cfg.Advertise {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, advertiseTimeout)
	defer cancel()
	ad, err := dnssd.Advertise(ctx, dnssd.Config{Port: port, Interfaces: n.cfg.Interfaces,
		Logger: n.log.With("component", "dnssd")})
	if err != nil {
		n.log.Warn("substitute server not advertised on the LAN", "err", err)
		return
	}
	// Withdrawn before the server stops.
	n.loops.Defer("advertisement", ad.Close)
}

// startAgent runs the build agent once this node is registered in its
// replica of the build queue: the replica has then caught up at least with
// this node's own registration, so the builds it shows running here are
// orphans of an earlier run, not builds it has not seen finish yet.
func (n *Node) startAgent(ctx context.Context) error {
	tick := time.NewTicker(min(n.cfg.GossipInterval, time.Second))
	a, err := agent.New(agent.Config{
		Node: n.mesh.ID(), FSM: n.fsm, Applier: n.applier(), Executor: n.exec, Store: n.store,
		Fetcher: n.source, Signer: n.signer, OutputNAR: n.outputNAR, MaxBuilds: n.cfg.MaxBuilds,
		Load: n.load1, LoadLimit: n.agentLoadLimit(), TakeNext: n.takesNext, Tick: tick.C,
		Timeout: n.cfg.BuildTimeout, MaxSilent: n.cfg.MaxSilent, Logs: n.logs, Finished: n.metrics.BuildFinished,
		Logger: n.log.With("component", "agent"),
	})
	if err != nil {
		tick.Stop()
		return fmt.Errorf("build agent: %w", err)
	}
	n.loops.Defer("agent ticker", stopTicker(tick))
	// Stopping the agent stops its running builds and reports them as
	// failed through the mesh.
	n.loops.Go("build agent", n.members.Registered(), func(ctx context.Context) error {
		n.agent.Store(a)
		if err := a.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			n.log.Error("build agent stopped", "err", err)
		}
		return nil
	})
	return nil
}

// stopTicker is t.Stop as a cleanup of the loop group.
func stopTicker(t *time.Ticker) func() error {
	return func() error { t.Stop(); return nil }
}

// agentLoadLimit is the load below which the agent starts a build beside one
// already running: --max-load, or else the number of cores.
func (n *Node) agentLoadLimit() float64 {
	if n.cfg.MaxLoad > 0 {
		return n.cfg.MaxLoad
	}
	return float64(runtime.NumCPU())
}

// load1 is the machine's 1-minute load average, 0 when unreadable.
func (n *Node) load1() float64 {
	v, _ := hostinfo.Load1()
	return v
}

// runningBuilds is the number of builds the agent runs, for gossip.
func (n *Node) runningBuilds() int {
	if a := n.agent.Load(); a != nil {
		return len(a.Running())
	}
	return 0
}
