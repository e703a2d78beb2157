package node

import (
	"errors"
	"math"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/node/datadir"
)

func TestValidateRejectsBadFlags(t *testing.T) {
	secret := strings.Repeat("ab", datadir.SecretSize)
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string // substring naming the flag
	}{
		{"no data dir", func(c *Config) { c.DataDir = "" }, "--data-dir"},
		{"secret and file", func(c *Config) { c.Mode, c.Secret, c.SecretFile = ModeJoin, secret, "/f" }, "--secret and --secret-file"},
		{"secret on init", func(c *Config) { c.Mode, c.Secret = ModeInit, secret }, "only apply to join"},
		{"secret on run", func(c *Config) { c.SecretFile = "/f" }, "only apply to join"},
		{"join without secret", func(c *Config) { c.Mode = ModeJoin }, "--secret HEX or --secret-file"},
		{"short secret", func(c *Config) { c.Mode, c.Secret = ModeJoin, "abcd" }, "--secret: bad mesh secret: want 64"},
		{"non-hex secret", func(c *Config) { c.Mode, c.Secret = ModeJoin, strings.Repeat("zz", datadir.SecretSize) }, "--secret: bad mesh secret"},
		{"negative expect", func(c *Config) { c.BootstrapExpect = -1 }, "--bootstrap-expect -1"},
		{"expect on init", func(c *Config) { c.Mode, c.BootstrapExpect = ModeInit, 3 }, "--bootstrap-expect does not apply to init"},
		{"expect non-voter", func(c *Config) { c.BootstrapExpect, c.Voter = 3, false }, "--bootstrap-expect with --voter=false"},
		{"init non-voter", func(c *Config) { c.Mode, c.Voter = ModeInit, false }, "init with --voter=false"},
		{"profile", func(c *Config) { c.RaftProfile = "fast" }, `--raft-profile "fast"`},
		{"remove-after short", func(c *Config) { c.RemoveAfter = time.Second }, "--remove-after 1s"},
		{"gossip interval", func(c *Config) { c.GossipInterval = 0 }, "--gossip-interval"},
		{"no listen", func(c *Config) { c.Listen = nil }, "--listen"},
		{"bad listen", func(c *Config) { c.Listen = []string{"localhost"} }, "--listen localhost"},
		{"udp listen", func(c *Config) { c.Listen = []string{"/ip4/0.0.0.0/udp/8760"} }, "not a TCP address"},
		{"peer without id", func(c *Config) { c.Peers = []string{"/ip4/198.18.0.1/tcp/8760"} }, "--peer /ip4/198.18.0.1/tcp/8760"},
		{"relay", func(c *Config) { c.Relay = "yes" }, `--relay: relay mode "yes": want auto, on or off`},
		{"public-range", func(c *Config) { c.PublicRanges = []string{"198.18.0.0"} }, `--public-range: public range "198.18.0.0": want a CIDR prefix such as 100.64.0.0/10`},
		{"interface", func(c *Config) { c.Interfaces = []string{"nosuchif0"} }, "--interface nosuchif0"},
		{"max builds", func(c *Config) { c.MaxBuilds = -2 }, "--max-builds -2"},
		{"max load", func(c *Config) { c.MaxLoad = -1 }, "--max-load -1"},
		{"max load NaN", func(c *Config) { c.MaxLoad = math.NaN() }, "--max-load NaN"},
		{"system", func(c *Config) { c.Systems = []string{"x86_64"} }, `--system "x86_64"`},
		{"executor", func(c *Config) { c.Executor = "docker" }, `--executor "docker"`},
		{"guix without guix", func(c *Config) { c.Guix = "/usr/bin/guix" }, "--guix and --guix-substitute-url only apply"},
		{"guix without server", func(c *Config) { c.Executor, c.SubstituteListen = ExecutorGuix, "off" }, "--executor guix needs the substitute server"},
		{"guix on a random port", func(c *Config) { c.Executor, c.SubstituteListen = ExecutorGuix, "127.0.0.1:0" }, "needs a fixed --substitute-listen port"},
		{"nix store without nix", func(c *Config) { c.NixStore = "daemon" }, "--nix-store only applies to --executor nix"},
		{"build timeout", func(c *Config) { c.BuildTimeout = -time.Second }, "--build-timeout -1s"},
		{"max silent", func(c *Config) { c.MaxSilent = -time.Second }, "--max-silent -1s"},
		{"build uids", func(c *Config) { c.BuildUIDs = "100-50" }, "--build-uids: ids \"100-50\""},
		{"build uids few", func(c *Config) { c.BuildUIDs, c.MaxBuilds = "30000-30001", 4 }, "--build-uids 30000-30001: 2 uids for --max-builds 4"},
		{"build uids nix", func(c *Config) { c.Executor, c.BuildUIDs = ExecutorNix, "30000-30063" }, "--build-uids and --build-memory only apply"},
		{"build memory", func(c *Config) { c.BuildMemory = -1 }, "--build-memory -1"},
		{"substitute listen", func(c *Config) { c.SubstituteListen = "8761" }, `--substitute-listen "8761"`},
		{"substitute port", func(c *Config) { c.SubstituteListen = ":99999" }, `port "99999"`},
		{"substitute host name", func(c *Config) { c.SubstituteListen = "localhost:8761" }, "not a host name"},
		{"nar cache size", func(c *Config) { c.NARCacheSize = 0 }, "--nar-cache-size 0"},
		{"http listen port only", func(c *Config) { c.HTTPListen = ":8767" }, `--http-listen ":8767": want IP:PORT`},
		{"http listen host name", func(c *Config) { c.HTTPListen = "localhost:8767" }, `--http-listen "localhost:8767"`},
		{"http listen no port", func(c *Config) { c.HTTPListen = "127.0.0.1" }, `--http-listen "127.0.0.1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.DataDir = t.TempDir()
			tc.edit(&c)
			err := c.Validate()
			if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want ErrConfig naming %q", err, tc.want)
			}
		})
	}
}

func TestValidateNormalises(t *testing.T) {
	c := DefaultConfig()
	c.DataDir = "relative/dir"
	c.Listen = []string{":8760", "198.18.0.1:9000", "[::1]:1234", "/ip4/127.0.0.1/tcp/0"}
	c.Peers = []string{"/ip4/198.18.0.2/tcp/8760/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(c.DataDir) || !strings.HasSuffix(c.DataDir, "relative/dir") {
		t.Errorf("DataDir = %q, want it absolute", c.DataDir)
	}
	want := []string{"/ip4/0.0.0.0/tcp/8760", "/ip4/198.18.0.1/tcp/9000", "/ip6/::1/tcp/1234", "/ip4/127.0.0.1/tcp/0"}
	for i := range want {
		if c.Listen[i] != want[i] {
			t.Errorf("Listen[%d] = %q, want %q", i, c.Listen[i], want[i])
		}
	}
	if c.MaxBuilds != runtime.NumCPU() {
		t.Errorf("MaxBuilds = %d, want %d cores", c.MaxBuilds, runtime.NumCPU())
	}
	if len(c.Systems) == 0 {
		t.Errorf("no default systems for %s", runtime.GOARCH)
	}
}

func TestDefaultDataDir(t *testing.T) {
	got := DefaultDataDir()
	switch {
	case isRoot() && got != "/var/lib/tbfg":
		t.Errorf("root: DefaultDataDir() = %q, want /var/lib/tbfg", got)
	case !isRoot():
		t.Setenv("XDG_STATE_HOME", "/state")
		if got := DefaultDataDir(); got != "/state/tbfg" {
			t.Errorf("DefaultDataDir() = %q, want /state/tbfg", got)
		}
	}
}

func TestValidateSubstitutes(t *testing.T) {
	for _, tc := range []struct {
		name          string
		listen        string
		mdns, advert  bool
		wantListen    string
		wantAdvertise bool
	}{
		{"default", ":8761", true, true, ":8761", true},
		{"off", "off", true, true, "", false},
		{"empty", "", true, true, "", false},
		{"no advertise", "127.0.0.1:0", true, false, "127.0.0.1:0", false},
		{"no mdns implies no advertise", ":8761", false, true, ":8761", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.DataDir = t.TempDir()
			c.SubstituteListen, c.MDNS, c.Advertise = tc.listen, tc.mdns, tc.advert
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			if c.SubstituteListen != tc.wantListen || c.Advertise != tc.wantAdvertise {
				t.Errorf("SubstituteListen %q, Advertise %v; want %q, %v", c.SubstituteListen, c.Advertise, tc.wantListen, tc.wantAdvertise)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1024", 1024, true}, {"10G", 10 << 30, true}, {"10GiB", 10 << 30, true}, {"512M", 512 << 20, true},
		{"1T", 1 << 40, true}, {"4K", 4096, true}, {"7B", 7, true}, {"", 0, false}, {"G", 0, false},
		{"-1", 0, false}, {"1.5G", 0, false}, {"10X", 0, false}, {"9999999999T", 0, false},
	} {
		got, err := ParseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestSubstituteURL(t *testing.T) {
	announced := []string{"/ip6/::1/tcp/8760", "/ip4/198.18.0.5/tcp/8760", "/ip4/198.18.0.6/tcp/8760"}
	for _, tc := range []struct {
		listen string
		addrs  []string
		want   string
	}{
		{":8761", announced, "http://198.18.0.5:8761"},
		{"0.0.0.0:8761", announced, "http://198.18.0.5:8761"},
		{"127.0.0.1:0", announced, "http://127.0.0.1:8761"},
		{"[::1]:0", nil, "http://[::1]:8761"},
		{":8761", []string{"/ip6/::1/tcp/1"}, ""},
	} {
		if got := substituteURL(tc.listen, 8761, tc.addrs); got != tc.want {
			t.Errorf("substituteURL(%q, %v) = %q, want %q", tc.listen, tc.addrs, got, tc.want)
		}
	}
}

func TestOwnSubstituteURL(t *testing.T) {
	for listen, want := range map[string]string{
		":8761":           "http://127.0.0.1:8761",
		"0.0.0.0:9000":    "http://127.0.0.1:9000",
		"[::]:8761":       "http://127.0.0.1:8761",
		"198.18.0.1:8761": "http://198.18.0.1:8761",
		"[::1]:8761":      "http://[::1]:8761",
	} {
		c := Config{SubstituteListen: listen}
		if got := c.ownSubstituteURL(); got != want {
			t.Errorf("--substitute-listen %s: guix-daemon would use %s, want %s", listen, got, want)
		}
	}
}

// TestValidateHTTP: the status server listens on loopback by default, off
// turns it off, and addresses are normalised.
func TestValidateHTTP(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"off", ""},
		{"127.0.0.1:8767", "127.0.0.1:8767"},
		{"[::1]:80", "[::1]:80"},
		{"0.0.0.0:9000", "0.0.0.0:9000"},
	} {
		c := DefaultConfig()
		c.DataDir, c.HTTPListen = t.TempDir(), tc.in
		if err := c.Validate(); err != nil || c.HTTPListen != tc.want {
			t.Errorf("--http-listen %q: %q, %v; want %q", tc.in, c.HTTPListen, err, tc.want)
		}
	}
	if c := DefaultConfig(); c.HTTPListen != "127.0.0.1:8767" {
		t.Errorf("default --http-listen %q, want 127.0.0.1:8767", c.HTTPListen)
	}
}

// TestValidateRetention: bad retention bounds are refused, naming the flag.
func TestValidateRetention(t *testing.T) {
	for _, tc := range []struct {
		set  func(*Config)
		flag string
	}{
		{func(c *Config) { c.StoreMax = -1 }, "--store-max"},
		{func(c *Config) { c.MinFree = -1 }, "--min-free"},
		{func(c *Config) { c.History = time.Minute }, "--history"},
		{func(c *Config) { c.LogMaxAge = 0 }, "--log-max-age"},
		{func(c *Config) { c.LogMaxSize = 0 }, "--log-max-size"},
	} {
		c := DefaultConfig()
		tc.set(&c)
		err := c.validateRetention()
		if err == nil || !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("%s: got %v, want an error naming it", tc.flag, err)
		}
	}
	if c := DefaultConfig(); c.validateRetention() != nil {
		t.Errorf("defaults refused: %v", c.validateRetention())
	}
}
