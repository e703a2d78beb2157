package node

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/tbfg/tbfg-node/internal/hostinfo"
	"github.com/tbfg/tbfg-node/mesh"
	"github.com/tbfg/tbfg-node/node/datadir"
	"github.com/tbfg/tbfg-node/node/executor/sandbox"
	"github.com/tbfg/tbfg-node/store"
)

// Mode says how a node starts: on an existing data dir, as the first node of
// a new mesh, or joining an existing one.
type Mode int

const (
	// ModeRun runs a node whose data dir was set up by init or join.
	ModeRun Mode = iota
	// ModeInit creates a new mesh: a fresh secret and a one-node Raft cluster.
	ModeInit
	// ModeJoin joins the mesh whose secret is given; on a data dir that
	// already joined with that secret it just runs.
	ModeJoin
)

// DefaultPort is the TCP port of the libp2p host.
const DefaultPort = 8760

// DefaultSubstitutePort is the TCP port of the substitute server.
const DefaultSubstitutePort = 8761

// DefaultHTTPPort is the TCP port of the status server (pages, JSON API,
// metrics), on loopback by default.
const DefaultHTTPPort = 8767

// DefaultNARCacheSize is the default bound of the NAR cache: 10 GiB.
const DefaultNARCacheSize = 10 << 30

// DefaultReplicas is how many members hold each store item by default: the
// builder and one copy.
const DefaultReplicas = 2

// Retention defaults: what a home-lab node keeps without being told.
const (
	// DefaultMinFree is the free space kept on the store's disk: 5 GiB.
	DefaultMinFree = 5 << 30
	// DefaultHistory is how long finished builds stay in the replicated
	// state: 30 days.
	DefaultHistory = 30 * 24 * time.Hour
	// DefaultLogMaxAge is how long a successful build's log is kept: 14 days.
	DefaultLogMaxAge = 14 * 24 * time.Hour
	// DefaultLogMaxSize bounds all build logs together: 1 GiB.
	DefaultLogMaxSize = 1 << 30
)

// Executors accepted by Config.Executor.
const (
	ExecutorBuiltin = "builtin"
	ExecutorNix     = "nix"
	ExecutorGuix    = "guix"
)

// Raft timing profiles accepted by Config.RaftProfile.
const (
	ProfileDefault = "default"
	ProfileLAN     = "lan"
	ProfileWAN     = "wan"
	ProfileTest    = "test"
)

// Config is everything a node needs. It is filled from DefaultConfig, then
// from a --config file, then from command-line flags (the command line does
// both), then checked and normalised by Validate. The comment of each field
// names its flag, which is also its key in a config file.
type Config struct {
	// DataDir holds mesh.secret, admin.sock, lock and the mesh's own state
	// (--data-dir).
	DataDir string
	// Mode is set by the subcommand: run, init or join.
	Mode Mode
	// Secret is the mesh secret as 64 hexadecimal digits, join only (--secret).
	Secret string
	// SecretFile is a file holding the secret in the same form, join only
	// (--secret-file).
	SecretFile string
	// Listen are the libp2p listen addresses, as multiaddrs or host:port
	// (--listen, repeatable).
	Listen []string
	// Interfaces limits announced addresses and mDNS to these network
	// interfaces; empty means all (--interface, repeatable).
	Interfaces []string
	// Peers are multiaddrs ending in /p2p/ID dialled at start (--peer,
	// repeatable).
	Peers []string
	// MDNS enables discovery on the LAN (--no-mdns turns it off).
	MDNS bool
	// Relay says whether the node relays connections between members behind
	// NAT: auto (while AutoNAT finds it publicly reachable), on or off
	// (--relay).
	Relay string
	// PublicRanges are CIDR prefixes the node treats as public addresses,
	// for networks whose public side uses private or reserved ranges
	// (--public-range, repeatable).
	PublicRanges []string
	// Voter is false for machines that come and go (--voter=false).
	Voter bool
	// BootstrapExpect bootstraps a new mesh once that many fresh nodes started
	// with the same value see each other (--bootstrap-expect).
	BootstrapExpect int
	// RaftProfile is default, lan, wan or test (--raft-profile).
	RaftProfile string
	// RemoveAfter is how long a member may be silent before the leader
	// removes it (--remove-after).
	RemoveAfter time.Duration
	// GossipInterval is how often the node publishes its status
	// (--gossip-interval).
	GossipInterval time.Duration
	// MaxBuilds is the number of builds run at once, default the number of
	// cores (--max-builds).
	MaxBuilds int
	// MaxLoad is the 1-minute load average at which this node takes no
	// new builds: the leader allocates none to it, and its agent starts no
	// second one; 0 means no limit at the leader and the number of cores
	// for the agent's second build (--max-load).
	MaxLoad float64
	// Systems are the system types built for, default from the machine
	// (--system, repeatable).
	Systems []string
	// Features are the system features this machine offers to builds that
	// require them, e.g. kvm (--feature, repeatable).
	Features []string
	// StoreDir is the logical directory of the node's built-in store, whose
	// items live under the data dir in store/ (--store-dir).
	StoreDir string
	// Executor is how builds run: ExecutorBuiltin (no daemon, the node's own
	// store), ExecutorNix or ExecutorGuix (the local guix-daemon)
	// (--executor).
	Executor string
	// NixStore is the Nix store URI the nix executor builds in, passed to
	// Nix's --store; "" is Nix's default store (--nix-store).
	NixStore string
	// Guix is the guix command the guix executor runs; "" is guix from
	// PATH (--guix).
	Guix string
	// GuixSubstituteURLs are substitute servers guix-daemon may use for the
	// builds after this node's own, which always comes first
	// (--guix-substitute-url, repeatable). Without them it uses the mesh
	// only.
	GuixSubstituteURLs []string
	// BuildTimeout bounds each build; 0 means no bound (--build-timeout).
	BuildTimeout time.Duration
	// MaxSilent bounds how long a build may print nothing; 0 means no bound
	// (--max-silent).
	MaxSilent time.Duration
	// BuildUIDs are the host uids (and gids) the builtin executor's builds
	// run as, one per build, as FIRST-LAST; "" is the sandbox's default.
	// Only root can use other uids than its own (--build-uids).
	BuildUIDs string
	// BuildMemory bounds the memory of each builtin build, in bytes, through
	// a cgroup v2; 0 means no bound (--build-memory).
	BuildMemory int64
	// SubstituteListen is the substitute server's HOST:PORT; "" or "off"
	// (normalised to "") runs none (--substitute-listen).
	SubstituteListen string
	// Advertise announces the substitute server by DNS-SD on Interfaces
	// (--no-advertise turns it off). It is off whenever MDNS is: a node told
	// not to use multicast DNS sends none.
	Advertise bool
	// NARCacheSize bounds the substitute server's NAR cache in
	// DATA-DIR/nar-cache, in bytes (--nar-cache-size).
	NARCacheSize int64
	// Replicas is how many members should hold each store item, so that
	// outputs outlive the node that built them; 1 keeps only the builder's
	// copy (--replicas).
	Replicas int
	// StoreMax bounds the node's store in bytes: the store collector
	// removes what the mesh can spare, least recently used first, to stay
	// under it; 0 means no bound (--store-max).
	StoreMax int64
	// MinFree is the free space, in bytes, the node keeps on the disk of its
	// store: below it the collector runs and the node takes no new builds
	// (--min-free).
	MinFree int64
	// GCInterval is how often the store collector checks --store-max and
	// --min-free; an item stays at least twice as long (at least 10s) after
	// its last use, so that a copy or a submission is recorded in the
	// replicated state before it could go (--gc-interval).
	GCInterval time.Duration
	// History is how long a finished build's record stays in the replicated
	// state; older records are compacted away, keeping the availability of
	// their outputs (--history).
	History time.Duration
	// LogMaxAge is how long a successful build's log is kept; a failed
	// build's log is kept four times as long (--log-max-age).
	LogMaxAge time.Duration
	// LogMaxSize bounds the total size of the build logs in bytes; the
	// oldest successful builds' logs go first (--log-max-size).
	LogMaxSize int64
	// HTTPListen is the status server's IP:PORT (status pages, JSON API,
	// /metrics, /healthz, /readyz); "" or "off" (normalised to "") runs
	// none (--http-listen). It shows the farm to whoever reaches it, so it
	// listens on loopback unless told otherwise.
	HTTPListen string
	// Version is gossiped to the other nodes.
	Version string
	// Logger receives the node's logs; nil discards them.
	Logger *slog.Logger

	// withoutAgent keeps the node from building and copying items: tests
	// of the build queue alone watch allocations that nothing runs.
	withoutAgent bool
	// now is the clock of the leader's loops (allocation, lost members,
	// compaction); nil means time.Now. Tests of the history move it.
	now func() time.Time
	// compactEvery is how often the leader compacts the history; 0 means
	// membership.DefaultCompactEvery.
	compactEvery time.Duration
}

// DefaultConfig returns the defaults a user sees without flags.
func DefaultConfig() Config {
	return Config{
		DataDir:          DefaultDataDir(),
		Listen:           []string{fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", DefaultPort)},
		MDNS:             true,
		Relay:            string(mesh.RelayAuto),
		Voter:            true,
		RaftProfile:      ProfileDefault,
		RemoveAfter:      time.Minute,
		GossipInterval:   3 * time.Second,
		StoreDir:         "/gnu/store",
		Executor:         ExecutorBuiltin,
		SubstituteListen: fmt.Sprintf(":%d", DefaultSubstitutePort),
		Advertise:        true,
		NARCacheSize:     DefaultNARCacheSize,
		Replicas:         DefaultReplicas,
		MinFree:          DefaultMinFree,
		GCInterval:       time.Minute,
		History:          DefaultHistory,
		LogMaxAge:        DefaultLogMaxAge,
		LogMaxSize:       DefaultLogMaxSize,
		HTTPListen:       fmt.Sprintf("127.0.0.1:%d", DefaultHTTPPort),
		Version:          version(),
	}
}

// DefaultDataDir is /var/lib/tbfg for root, else $XDG_STATE_HOME/tbfg
// (~/.local/state/tbfg when XDG_STATE_HOME is unset).
func DefaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/tbfg"
	}
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "tbfg")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "tbfg")
	}
	return ""
}

// Validate normalises c (absolute data dir, multiaddr listen addresses,
// default systems and max builds) and rejects bad values and combinations
// with an error naming the flags involved.
func (c *Config) Validate() error {
	checks := []func() error{c.validateDataDir, c.validateSecret, c.validateMembership,
		c.validateTiming, c.validateListen, c.validatePeers, c.validateRelay, c.validatePublicRanges, c.validateInterfaces, c.validateBuilds,
		c.validateStoreDir, c.validateExecutor, c.validateSubstitutes, c.validateReplicas, c.validateHTTP,
		c.validateSandbox}
	for _, check := range checks {
		if err := check(); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	return nil
}

func (c *Config) validateDataDir() error {
	if c.DataDir == "" {
		return errors.New("--data-dir: empty (and no default: set HOME or XDG_STATE_HOME)")
	}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return fmt.Errorf("--data-dir %s: %w", c.DataDir, err)
	}
	c.DataDir = abs
	return nil
}

func (c *Config) validateSecret() error {
	given := c.Secret != "" || c.SecretFile != ""
	switch {
	case c.Secret != "" && c.SecretFile != "":
		return errors.New("--secret and --secret-file: give only one")
	case given && c.Mode != ModeJoin:
		return errors.New("--secret and --secret-file only apply to join (init makes a new secret, run reads mesh.secret)")
	case !given && c.Mode == ModeJoin:
		return errors.New("join needs the mesh secret: --secret HEX or --secret-file FILE (printed by tbfg-node init)")
	case c.Secret != "":
		if _, err := datadir.ParseSecret([]byte(c.Secret)); err != nil {
			return fmt.Errorf("--secret: %w", err)
		}
	}
	return nil
}

func (c *Config) validateMembership() error {
	switch {
	case c.BootstrapExpect < 0:
		return fmt.Errorf("--bootstrap-expect %d: must not be negative", c.BootstrapExpect)
	case c.BootstrapExpect > 0 && c.Mode == ModeInit:
		return errors.New("--bootstrap-expect does not apply to init, which bootstraps a mesh alone; use it with join or run")
	case c.BootstrapExpect > 0 && !c.Voter:
		return errors.New("--bootstrap-expect with --voter=false: only voters can bootstrap")
	case c.Mode == ModeInit && !c.Voter:
		return errors.New("init with --voter=false: the first node of a mesh must be a voter")
	}
	return nil
}

func (c *Config) validateTiming() error {
	if _, ok := timings()[c.RaftProfile]; !ok {
		return fmt.Errorf("--raft-profile %q: want %s, %s, %s or %s", c.RaftProfile, ProfileDefault, ProfileLAN, ProfileWAN, ProfileTest)
	}
	if c.GossipInterval <= 0 {
		return fmt.Errorf("--gossip-interval %s: must be positive", c.GossipInterval)
	}
	if c.RemoveAfter < 3*c.GossipInterval {
		return fmt.Errorf("--remove-after %s: must be at least three --gossip-interval (%s), or live nodes get removed",
			c.RemoveAfter, 3*c.GossipInterval)
	}
	return nil
}

func (c *Config) validateListen() error {
	if len(c.Listen) == 0 {
		return errors.New("--listen: at least one address needed")
	}
	for i, a := range c.Listen {
		norm, err := normaliseListen(a)
		if err != nil {
			return fmt.Errorf("--listen %s: %w", a, err)
		}
		c.Listen[i] = norm
	}
	return nil
}

// normaliseListen turns host:port or :port into a TCP multiaddr and checks
// multiaddrs.
func normaliseListen(a string) (string, error) {
	if !strings.HasPrefix(a, "/") {
		if strings.HasPrefix(a, ":") {
			a = "0.0.0.0" + a
		}
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			return "", fmt.Errorf("want a multiaddr (/ip4/0.0.0.0/tcp/%d) or IP:PORT: %w", DefaultPort, err)
		}
		proto := "ip4"
		if ap.Addr().Is6() {
			proto = "ip6"
		}
		a = fmt.Sprintf("/%s/%s/tcp/%d", proto, ap.Addr().Unmap(), ap.Port())
	}
	m, err := ma.NewMultiaddr(a)
	if err != nil {
		return "", err
	}
	if _, err := m.ValueForProtocol(ma.P_TCP); err != nil {
		return "", errors.New("not a TCP address")
	}
	return m.String(), nil
}

func (c *Config) validatePeers() error {
	for _, p := range c.Peers {
		if _, err := peer.AddrInfoFromString(p); err != nil {
			return fmt.Errorf("--peer %s: want a multiaddr ending in /p2p/PEER-ID: %w", p, err)
		}
	}
	return nil
}

func (c *Config) validateRelay() error {
	mode, err := mesh.ParseRelayMode(c.Relay)
	if err != nil {
		return fmt.Errorf("--relay: %w", err)
	}
	c.Relay = string(mode)
	return nil
}

func (c *Config) validatePublicRanges() error {
	for _, r := range c.PublicRanges {
		if _, err := mesh.ParsePublicRange(r); err != nil {
			return fmt.Errorf("--public-range: %w", err)
		}
	}
	return nil
}

func (c *Config) validateInterfaces() error {
	for _, name := range c.Interfaces {
		if _, err := net.InterfaceByName(name); err != nil {
			return fmt.Errorf("--interface %s: %w", name, err)
		}
	}
	return nil
}

func (c *Config) validateBuilds() error {
	if c.MaxBuilds < 0 {
		return fmt.Errorf("--max-builds %d: must not be negative", c.MaxBuilds)
	}
	if c.MaxBuilds == 0 {
		c.MaxBuilds = runtime.NumCPU()
	}
	if !(c.MaxLoad >= 0 && c.MaxLoad <= 1e6) { // also rejects NaN
		return fmt.Errorf("--max-load %v: must be between 0 (no limit) and 1000000", c.MaxLoad)
	}
	if len(c.Systems) == 0 {
		c.Systems = hostinfo.NativeSystems(runtime.GOARCH)
	}
	if len(c.Systems) == 0 {
		return fmt.Errorf("--system: no default for %s, name the systems this machine builds for", runtime.GOARCH)
	}
	for _, f := range c.Features {
		if f == "" || strings.ContainsAny(f, " \t\n") {
			return fmt.Errorf("--feature %q: want one word such as kvm", f)
		}
	}
	for _, s := range c.Systems {
		if !validSystem(s) {
			return fmt.Errorf("--system %q: want ARCH-KERNEL such as x86_64-linux", s)
		}
	}
	return nil
}

// validSystem reports whether s looks like a Nix system type.
func validSystem(s string) bool {
	arch, kernel, ok := strings.Cut(s, "-")
	return ok && arch != "" && kernel != "" && !strings.ContainsAny(s, " \t\n/")
}

func (c *Config) validateStoreDir() error {
	if err := store.Dir(c.StoreDir).Validate(); err != nil {
		return fmt.Errorf("--store-dir %q: %w", c.StoreDir, err)
	}
	return nil
}

func (c *Config) validateExecutor() error {
	switch {
	case c.Executor != ExecutorBuiltin && c.Executor != ExecutorNix && c.Executor != ExecutorGuix:
		return fmt.Errorf("--executor %q: want %s, %s or %s", c.Executor, ExecutorBuiltin, ExecutorNix, ExecutorGuix)
	case c.NixStore != "" && c.Executor != ExecutorNix:
		return fmt.Errorf("--nix-store only applies to --executor %s", ExecutorNix)
	case (c.Guix != "" || len(c.GuixSubstituteURLs) > 0) && c.Executor != ExecutorGuix:
		return fmt.Errorf("--guix and --guix-substitute-url only apply to --executor %s", ExecutorGuix)
	case c.BuildTimeout < 0:
		return fmt.Errorf("--build-timeout %s: must not be negative", c.BuildTimeout)
	case c.MaxSilent < 0:
		return fmt.Errorf("--max-silent %s: must not be negative", c.MaxSilent)
	}
	return nil
}

func (c *Config) validateSubstitutes() error {
	if !c.MDNS {
		c.Advertise = false
	}
	if c.SubstituteListen == "off" {
		c.SubstituteListen = ""
	}
	if c.SubstituteListen == "" {
		c.Advertise = false
		if c.Executor == ExecutorGuix {
			return fmt.Errorf("--executor %s needs the substitute server (--substitute-listen): guix-daemon fetches the .drv files and inputs from it", ExecutorGuix)
		}
		return nil
	}
	host, port, err := net.SplitHostPort(c.SubstituteListen)
	if err != nil {
		return fmt.Errorf("--substitute-listen %q: want HOST:PORT or :PORT, or off: %w", c.SubstituteListen, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("--substitute-listen %q: port %q: want 0 to 65535", c.SubstituteListen, port)
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("--substitute-listen %q: want an IP address, not a host name: %w", c.SubstituteListen, err)
		}
	}
	if c.NARCacheSize <= 0 {
		return fmt.Errorf("--nar-cache-size %d: must be positive", c.NARCacheSize)
	}
	if err := c.validateRetention(); err != nil {
		return err
	}
	if c.Executor == ExecutorGuix && port == "0" {
		return fmt.Errorf("--executor %s needs a fixed --substitute-listen port: guix-daemon fetches the .drv files and inputs from it", ExecutorGuix)
	}
	return nil
}

// ownSubstituteURL is where this machine's guix-daemon reaches the node's
// substitute server: its listen address, or loopback when it listens on
// every address.
func (c *Config) ownSubstituteURL() string {
	host, port, _ := net.SplitHostPort(c.SubstituteListen) // validated
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

func (c *Config) validateReplicas() error {
	if c.Replicas < 1 {
		return fmt.Errorf("--replicas %d: want at least 1 (the builder's own copy)", c.Replicas)
	}
	return nil
}

// DefaultBuildUIDs is the range of uids builtin builds run as when
// --build-uids is not given.
var DefaultBuildUIDs = sandbox.DefaultIDs.String()

// validateSandbox checks the builtin executor's build uids and memory.
func (c *Config) validateSandbox() error {
	switch {
	case (c.BuildUIDs != "" || c.BuildMemory != 0) && c.Executor != ExecutorBuiltin:
		return fmt.Errorf("--build-uids and --build-memory only apply to --executor %s (the daemons have their own build users)", ExecutorBuiltin)
	case c.BuildMemory < 0:
		return fmt.Errorf("--build-memory %d: must not be negative", c.BuildMemory)
	case c.BuildUIDs == "":
		return nil
	}
	ids, err := sandbox.ParseIDRange(c.BuildUIDs)
	switch {
	case err != nil:
		return fmt.Errorf("--build-uids: %w", err)
	case int64(ids.Count) < int64(c.MaxBuilds):
		return fmt.Errorf("--build-uids %s: %d uids for --max-builds %d; each running build needs its own", c.BuildUIDs, ids.Count, c.MaxBuilds)
	case os.Geteuid() != 0:
		return errors.New("--build-uids needs root: an unprivileged node runs every build as its own uid, each in namespaces of its own")
	}
	return nil
}

// buildIDs is the range of --build-uids, zero for the default.
func (c *Config) buildIDs() sandbox.IDRange {
	ids, _ := sandbox.ParseIDRange(c.BuildUIDs) // validated
	return ids
}

// ParseSize reads a size in bytes, with an optional suffix K, M, G or T
// (powers of 1024; KiB, MiB, GiB, TiB and B are accepted too), as
// --nar-cache-size takes it.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSpace(s), "B")
	t = strings.TrimSuffix(t, "i")
	shift := 0
	if t != "" {
		if i := strings.IndexByte("KMGT", t[len(t)-1]); i >= 0 {
			shift, t = 10*(i+1), t[:len(t)-1]
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 || v > math.MaxInt64>>shift {
		return 0, fmt.Errorf("size %q: want a number of bytes, optionally with K, M, G or T", s)
	}
	return v << shift, nil
}

// timings maps each --raft-profile to the mesh's timing.
func timings() map[string]mesh.Timing {
	return map[string]mesh.Timing{
		ProfileDefault: mesh.DefaultTiming,
		ProfileLAN:     mesh.LANTiming,
		ProfileWAN:     mesh.WANTiming,
		ProfileTest:    mesh.TestTiming,
	}
}

// validateHTTP checks --http-listen: off, or IP:PORT.
func (c *Config) validateHTTP() error {
	if c.HTTPListen == "off" {
		c.HTTPListen = ""
	}
	if c.HTTPListen == "" {
		return nil
	}
	ap, err := netip.ParseAddrPort(c.HTTPListen)
	if err != nil {
		return fmt.Errorf("--http-listen %q: want IP:PORT (such as 127.0.0.1:%d) or off: %w", c.HTTPListen, DefaultHTTPPort, err)
	}
	c.HTTPListen = ap.String()
	return nil
}

// validateRetention checks the bounds on disk and history.
func (c *Config) validateRetention() error {
	switch {
	case c.StoreMax < 0:
		return fmt.Errorf("--store-max %d: must be 0 (no bound) or positive", c.StoreMax)
	case c.MinFree < 0:
		return fmt.Errorf("--min-free %d: must be 0 or positive", c.MinFree)
	case c.GCInterval < time.Second:
		return fmt.Errorf("--gc-interval %s: must be at least 1s", c.GCInterval)
	case c.History < time.Hour:
		return fmt.Errorf("--history %s: must be at least 1h, so that users see what just finished", c.History)
	case c.LogMaxAge < time.Hour:
		return fmt.Errorf("--log-max-age %s: must be at least 1h", c.LogMaxAge)
	case c.LogMaxSize <= 0:
		return fmt.Errorf("--log-max-size %d: must be positive", c.LogMaxSize)
	}
	return nil
}
