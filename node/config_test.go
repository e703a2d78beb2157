package node

import (
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestValidateRejectsBadFlags(t *testing.T) {
	secret := strings.Repeat("ab", SecretSize)
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
		{"non-hex secret", func(c *Config) { c.Mode, c.Secret = ModeJoin, strings.Repeat("zz", SecretSize) }, "--secret: bad mesh secret"},
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
		{"interface", func(c *Config) { c.Interfaces = []string{"nosuchif0"} }, "--interface nosuchif0"},
		{"max builds", func(c *Config) { c.MaxBuilds = -2 }, "--max-builds -2"},
		{"system", func(c *Config) { c.Systems = []string{"x86_64"} }, `--system "x86_64"`},
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

func TestNativeSystems(t *testing.T) {
	for _, tc := range []struct {
		arch string
		want string
	}{{"amd64", "x86_64-linux i686-linux"}, {"arm64", "aarch64-linux"}, {"386", "i686-linux"}, {"mips", ""}} {
		if got := strings.Join(nativeSystems(tc.arch), " "); got != tc.want {
			t.Errorf("nativeSystems(%s) = %q, want %q", tc.arch, got, tc.want)
		}
	}
}
