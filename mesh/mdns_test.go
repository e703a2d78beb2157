package mesh

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/citest"
)

// mdnsNetnsEnv marks the copy of the test binary that runs inside its own
// network namespace.
const mdnsNetnsEnv = "TBFG_MESH_MDNS_NETNS"

// TestMDNSDiscovery has a fresh node find and join a mesh by real mDNS
// (go-libp2p's mdns over zeroconf), nothing configured but the secret. It
// re-runs itself in a new network namespace holding only a veth pair with
// 198.18.0.1 and 198.18.0.2, so no packet reaches a real network. A node
// with another secret announces another service name and finds nobody.
func TestMDNSDiscovery(t *testing.T) {
	if os.Getenv(mdnsNetnsEnv) != "1" {
		runInNetns(t, "TestMDNSDiscovery")
		return
	}
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "mdns0", "type", "veth", "peer", "name", "mdns1"},
		{"addr", "add", "198.18.0.1/24", "dev", "mdns0"},
		{"addr", "add", "198.18.0.2/24", "dev", "mdns1"},
		{"link", "set", "mdns0", "up"},
		{"link", "set", "mdns1", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	mod := func(cfg *Config, i int) {
		cfg.ListenAddrs = []string{fmt.Sprintf("/ip4/198.18.0.%d/tcp/0", i+1)}
		cfg.Interfaces = []string{fmt.Sprint("mdns", i)}
		cfg.MDNS = true
	}
	a := testConfig(t, filepath.Join(t.TempDir(), "a"))
	a.Bootstrap = true
	mod(&a, 0)
	na := startNode(t, a)
	b := testConfig(t, filepath.Join(t.TempDir(), "b"))
	mod(&b, 1)
	nb := startNode(t, b)
	c := &cluster{t: t, nodes: []*testNode{na, nb}}
	waitFor(t, 20*time.Second, "two nodes joined by mDNS", func() error { return c.agreed(2, 1) })
	x := testConfig(t, filepath.Join(t.TempDir(), "x"))
	x.Secret = []byte("another secret, 32 bytes long!!!")
	mod(&x, 1)
	if _, err := tryStart(t, x, 3*time.Second); err == nil {
		t.Fatal("node with another secret joined")
	}
	if n := len(na.host.Network().Peers()); n != 1 {
		t.Fatalf("first node has %d connections, want 1", n)
	}
}

// runInNetns runs test in a copy of the test binary inside a new network
// namespace (unshare -n). Without root or unshare it skips, unless CI is
// set, where it fails.
func runInNetns(t *testing.T, test string) {
	citest.Root(t, "a network namespace per mDNS test")
	citest.Tool(t, "unshare", "util-linux")
	citest.Tool(t, "ip", "iproute2")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("unshare", "--net", "--", exe, "-test.run", "^"+test+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), mdnsNetnsEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("in network namespace:\n%s", out)
	if err != nil {
		t.Fatalf("%s in a network namespace: %v", test, err)
	}
}
