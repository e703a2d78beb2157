package dnssd

import (
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/netns"
)

// lan is three namespace hosts: plain (no Avahi: the zeroconf backend),
// withAvahi (avahi-daemon on its own bus) and browser (avahi-daemon, where
// avahi-browse runs as a guix-daemon --discover on the LAN would).
type lan struct {
	plain, withAvahi, browser  *netns.Host
	noBus, avahiBus, browseBus string
	dir                        string
	avahiDaemon                *exec.Cmd // the one on withAvahi
}

func newTestLAN(t *testing.T) *lan {
	t.Helper()
	requireNamespaces(t)
	hosts := newLAN(t, 3)
	dir := t.TempDir()
	l := &lan{plain: hosts[0], withAvahi: hosts[1], browser: hosts[2], dir: dir}
	l.noBus = "unix:path=" + filepath.Join(dir, "no-bus")
	for _, h := range []struct {
		host *netns.Host
		bus  *string
		name string
	}{{l.withAvahi, &l.avahiBus, "tbfg-avahi"}, {l.browser, &l.browseBus, "tbfg-browser"}} {
		d := filepath.Join(dir, h.name)
		if err := mkdir(d); err != nil {
			t.Fatal(err)
		}
		*h.bus = startBus(t, h.host, d)
		cmd := startAvahiDaemon(t, h.host, *h.bus, d, h.name)
		if h.host == l.withAvahi {
			l.avahiDaemon = cmd
		}
	}
	return l
}

// waitListed polls avahi-browse on the browser host until want is listed
// with the given address and port, or fails after a deadline.
func (l *lan) waitListed(t *testing.T, want string, addr string, port int) {
	t.Helper()
	var last []service
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		last = browse(t, l.browser, l.browseBus)
		for _, s := range last {
			if s.name == want && s.address == addr && s.port == port && s.protocol == "IPv4" {
				return
			}
		}
		time.Sleep(200 * time.Millisecond) // polling interval
	}
	t.Fatalf("avahi-browse never listed %q at %s:%d; last saw %+v", want, addr, port, last)
}

// waitGone polls avahi-browse until name is no longer listed.
func (l *lan) waitGone(t *testing.T, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if !slices.ContainsFunc(browse(t, l.browser, l.browseBus), func(s service) bool { return s.name == name }) {
			return
		}
		time.Sleep(200 * time.Millisecond) // polling interval
	}
	t.Fatalf("avahi-browse still lists %q after the advertiser closed", name)
}

// TestAdvertiseLAN advertises from namespace hosts with each backend and
// checks with the real avahi-browse on another host that the service
// appears with the host's IPv4 address and port, and disappears on Close.
func TestAdvertiseLAN(t *testing.T) {
	l := newTestLAN(t)
	tests := []struct {
		name        string
		host        *netns.Host
		bus         string
		backend     Backend
		wantBackend Backend
	}{
		{"zeroconf chosen without avahi", l.plain, l.noBus, BackendAuto, BackendZeroconf},
		{"avahi chosen when it runs", l.withAvahi, l.avahiBus, BackendAuto, BackendAvahi},
		{"zeroconf forced", l.plain, l.noBus, BackendZeroconf, BackendZeroconf},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			instance := fmt.Sprintf("%sns-%d", InstancePrefix, i)
			port := 18761 + i
			h := startHelper(t, tt.host, map[string]string{
				helperInstance: instance, helperPort: strconv.Itoa(port), helperIfaces: "eth0",
				helperHost: "tbfg-zeroconf", helperBackend: string(tt.backend), helperBus: tt.bus,
			})
			if h.backend != tt.wantBackend || h.instance != instance {
				t.Fatalf("advertiser uses %s as %q, want %s as %q", h.backend, h.instance, tt.wantBackend, instance)
			}
			l.waitListed(t, instance, tt.host.Addr.String(), port)
			h.stop(t)
			l.waitGone(t, instance)
		})
	}
}

// TestAvahiCollision advertises one name twice through Avahi, on the same
// host (a local collision, refused at once) and on two hosts (a collision
// found by mDNS probing): the second advertisement takes Avahi's alternative
// name and both are browsable.
func TestAvahiCollision(t *testing.T) {
	l := newTestLAN(t)
	tests := []struct {
		name         string
		first        *netns.Host
		firstBus     string
		wantInstance string
	}{
		{"same host", l.withAvahi, l.avahiBus, "same #2"},
		{"other host", l.browser, l.browseBus, "other #2"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, _, _ := strings.Cut(tt.wantInstance, " ")
			port1, port2 := 18771+2*i, 18772+2*i
			env := map[string]string{helperInstance: InstancePrefix + name, helperIfaces: "eth0"}
			first := startHelper(t, tt.first, with(env, helperBus, tt.firstBus, helperPort, strconv.Itoa(port1)))
			second := startHelper(t, l.withAvahi, with(env, helperBus, l.avahiBus, helperPort, strconv.Itoa(port2)))
			want := InstancePrefix + tt.wantInstance
			if first.instance != InstancePrefix+name || second.instance != want {
				t.Fatalf("instances %q and %q, want %q and %q", first.instance, second.instance, InstancePrefix+name, want)
			}
			l.waitListed(t, first.instance, tt.first.Addr.String(), port1)
			l.waitListed(t, want, l.withAvahi.Addr.String(), port2)
			second.stop(t)
			l.waitGone(t, want)
			first.stop(t)
		})
	}
}

// with returns a copy of env with the given key, value pairs set.
func with(env map[string]string, kv ...string) map[string]string {
	out := maps.Clone(env)
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// TestAvahiRestart stops the avahi-daemon an advertisement is registered
// with and starts a new one: the advertisement registers itself again.
func TestAvahiRestart(t *testing.T) {
	l := newTestLAN(t)
	instance := InstancePrefix + "restart"
	h := startHelper(t, l.withAvahi, map[string]string{
		helperInstance: instance, helperPort: "18781", helperIfaces: "eth0", helperBus: l.avahiBus,
	})
	addr := l.withAvahi.Addr.String()
	l.waitListed(t, instance, addr, 18781)

	// SIGTERM: the daemon sends goodbyes, so the browser forgets the service.
	if err := l.avahiDaemon.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = l.avahiDaemon.Wait()
	l.waitGone(t, instance)

	startAvahiDaemon(t, l.withAvahi, l.avahiBus, filepath.Join(l.dir, "tbfg-avahi"), "tbfg-avahi")
	l.waitListed(t, instance, addr, 18781)
	h.stop(t)
	l.waitGone(t, instance)
}
