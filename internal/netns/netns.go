package netns

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// Prefix starts the name of every namespace and link this package creates.
const Prefix = "tbfg"

// MaxHosts bounds the hosts of one Network: addresses are 198.18.0.1 to
// 198.18.0.MaxHosts in one /24.
const MaxHosts = 250

// Errors returned by this package.
var (
	// ErrNotRoot is returned by Available when the process cannot create
	// namespaces.
	ErrNotRoot = errors.New("network namespaces need root")
	// ErrTooManyHosts is returned by AddHost beyond MaxHosts.
	ErrTooManyHosts = errors.New("too many hosts for one network")
)

// networkSeq tells apart the networks of one process.
var networkSeq atomic.Uint32

// Network is a bridge with no uplink and the hosts attached to it.
type Network struct {
	id     string // Prefix + 5 base-36 PID digits + 1 sequence digit
	bridge string
	// subnet is the third byte of the hosts' addresses, 198.18.subnet.0/24.
	subnet byte
	// gateway, when valid, is the NAT router hosts route everything through;
	// it holds the first address, so hosts start at .2.
	gateway netip.Addr

	mu    sync.Mutex
	hosts []*Host
}

// Host is one network namespace on a Network, reached from the others at Addr.
type Host struct {
	// Name is the network namespace's name, as `ip netns` shows it.
	Name string
	// Link is the root-namespace end of the host's veth pair; setting it down
	// cuts the host off the network.
	Link string
	// Addr is the host's IPv4 address on its eth0.
	Addr netip.Addr
}

// Available reports whether this process may create namespaces, and that ip(8)
// is installed.
func Available() error {
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("ip(8) not found (Debian package iproute2): %w", err)
	}
	return nil
}

// New creates an empty network: a bridge in the root namespace, without IPv6
// so that nothing in the root namespace talks on it.
func New() (*Network, error) {
	return newNetwork(runID(os.Getpid(), networkSeq.Add(1)))
}

// newNetwork creates the bridge of a network whose names start with id.
func newNetwork(id string) (*Network, error) {
	n := &Network{id: id}
	n.bridge = n.id + "br"
	steps := [][]string{
		{"link", "add", n.bridge, "type", "bridge", "forward_delay", "0", "mcast_snooping", "0"},
		{"link", "set", n.bridge, "addrgenmode", "none"},
		{"link", "set", n.bridge, "up"},
	}
	for _, args := range steps {
		if err := ip(args...); err != nil {
			_ = ip("link", "del", n.bridge)
			return nil, fmt.Errorf("create bridge: %w", err)
		}
	}
	return n, nil
}

// runID names one network of process pid: Prefix, the PID in 5 base-36
// digits, and one base-36 digit of seq.
func runID(pid int, seq uint32) string {
	p := strconv.FormatInt(int64(pid), 36)
	p = strings.Repeat("0", max(0, 5-len(p))) + p
	return Prefix + p + strconv.FormatInt(int64(seq%36), 36)
}

// Bridge is the name of the network's bridge in the root namespace.
func (n *Network) Bridge() string { return n.bridge }

// AddHost creates the next host: a namespace with lo up and an eth0 on the
// bridge at 198.18.0.N/24, with a route for multicast so mDNS works without a
// default route. On a LAN of a NAT (NewNAT) the address is 198.18.L.N+1/24
// and the default route goes through the LAN's router.
func (n *Network) AddHost() (*Host, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	i := len(n.hosts) + 1
	if i > MaxHosts {
		return nil, ErrTooManyHosts
	}
	last := byte(i)
	if n.gateway.IsValid() {
		last++
	}
	h := &Host{
		Name: fmt.Sprintf("%sh%d", n.id, i),
		Link: fmt.Sprintf("%sv%d", n.id, i),
		Addr: netip.AddrFrom4([4]byte{198, 18, n.subnet, last}),
	}
	if err := n.createHost(h, fmt.Sprintf("%sp%d", n.id, i)); err != nil {
		removeHost(h)
		return nil, fmt.Errorf("create host %s: %w", h.Name, err)
	}
	n.hosts = append(n.hosts, h)
	return h, nil
}

func (n *Network) createHost(h *Host, peer string) error {
	ns := []string{"-n", h.Name}
	steps := [][]string{
		{"netns", "add", h.Name},
		{"link", "add", h.Link, "type", "veth", "peer", "name", peer},
		{"link", "set", h.Link, "addrgenmode", "none"},
		{"link", "set", h.Link, "master", n.bridge},
		{"link", "set", h.Link, "up"},
		{"link", "set", peer, "netns", h.Name},
		append(ns, "link", "set", peer, "name", "eth0"),
		append(ns, "link", "set", "eth0", "addrgenmode", "none"),
		append(ns, "addr", "add", h.Addr.String()+"/24", "dev", "eth0"),
		append(ns, "link", "set", "lo", "up"),
		append(ns, "link", "set", "eth0", "up"),
		append(ns, "route", "add", "224.0.0.0/4", "dev", "eth0"),
	}
	if n.gateway.IsValid() {
		steps = append(steps, append(ns, "route", "add", "default", "via", n.gateway.String()))
	}
	for _, args := range steps {
		if err := ip(args...); err != nil {
			return err
		}
	}
	return nil
}

// Hosts returns the hosts added so far, in order.
func (n *Network) Hosts() []*Host {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*Host(nil), n.hosts...)
}

// Close kills every process left in the network's namespaces and deletes the
// namespaces, the veth pairs and the bridge. It returns the first error but
// always tries every step.
func (n *Network) Close() error {
	n.mu.Lock()
	hosts := n.hosts
	n.hosts = nil
	n.mu.Unlock()
	var errs []error
	for _, h := range hosts {
		errs = append(errs, removeHost(h))
	}
	errs = append(errs, delLink(n.bridge))
	return errors.Join(errs...)
}

// removeHost kills the processes in h's namespace and deletes it and its link.
func removeHost(h *Host) error {
	var errs []error
	if err := killNamespace(h.Name); err != nil {
		errs = append(errs, err)
	}
	// Deleting the root end destroys the pair at once, even while a dying
	// process still holds the namespace.
	errs = append(errs, delLink(h.Link), delNamespace(h.Name))
	return errors.Join(errs...)
}

// killNamespace sends SIGKILL to every process in network namespace name.
func killNamespace(name string) error {
	out, err := exec.Command("ip", "netns", "pids", name).CombinedOutput()
	if err != nil {
		return nil // no such namespace: nothing to kill
	}
	for _, f := range strings.Fields(string(out)) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 1 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill %d in %s: %w", pid, name, err)
		}
	}
	return nil
}

// SetLink sets the host's link up or down; down cuts it off the network
// without touching what runs inside.
func (h *Host) SetLink(up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	return ip("link", "set", h.Link, state)
}

// Command prepares name with args to run inside the host's namespace, killed
// if this process dies first.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.Name, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// ip runs ip(8) with args, returning its output in the error.
func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return &cmdError{args: args, err: err, out: strings.TrimSpace(string(out))}
	}
	return nil
}

// cmdError is a failed ip(8) command with what it printed.
type cmdError struct {
	args []string
	err  error
	out  string
}

func (e *cmdError) Error() string {
	return fmt.Sprintf("ip %s: %v: %s", strings.Join(e.args, " "), e.err, e.out)
}

func (e *cmdError) Unwrap() error { return e.err }

// delLink deletes link name from the root namespace if it exists.
func delLink(name string) error {
	if _, err := os.Stat(filepath.Join("/sys/class/net", name)); err != nil {
		return nil
	}
	return ip("link", "del", name)
}

// delNamespace deletes network namespace name if it exists.
func delNamespace(name string) error {
	if _, err := os.Stat(filepath.Join("/run/netns", name)); err != nil {
		return nil
	}
	return ip("netns", "del", name)
}
