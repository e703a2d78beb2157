package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/guixtest"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/substitutes/narinfo"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

// The tests against the real Guix (the guix-daemon and guix of
// ../shared/guix, see internal/guixtest) run private guix-daemons in the
// namespace hosts. Each shares the machine's store but has its own socket,
// ACL, narinfo cache and discovery state, so the machine's daemon and
// /etc/guix/acl are never touched, and the daemon reaches the hosts'
// substitute servers from inside their network.

// noSystemBus is the D-Bus address given to nodes that must advertise with
// their own mDNS answers: were an avahi-daemon on the machine's system bus,
// it would advertise them on the machine's real interfaces.
const noSystemBus = "DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent/tbfg-no-bus"

// startGuixDaemon runs a private guix-daemon in h's network namespace
// until the test ends.
func startGuixDaemon(t *testing.T, h *host, opts guixtest.DaemonOptions) *guixtest.PrivateDaemon {
	t.Helper()
	opts.Command = h.ns.Command
	return guixtest.StartDaemon(t, opts)
}

// substituteURL is h's substitute server as the other hosts reach it.
func substituteURL(h *host) string { return fmt.Sprintf("http://%s:%d", h.ns.Addr, substitutePort) }

// authorize runs `tbfg-node authorize args...` against h's node, as a user
// of a machine that runs both a node and the daemon d would.
func authorize(t *testing.T, h *host, d *guixtest.PrivateDaemon, args ...string) string {
	t.Helper()
	return runAuthorize(t, d, append([]string{"--data-dir", h.dataDir}, args...)...)
}

// authorizeFrom has a Guix machine that runs no node, that of the daemon
// d, authorize the members h's node lists: `tbfg-node acl --json` on h, and
// `tbfg-node authorize --from FILE args...` on the machine.
func authorizeFrom(t *testing.T, h *host, d *guixtest.PrivateDaemon, args ...string) string {
	t.Helper()
	members, err := h.cli("acl", "--json")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "members.json")
	writeFile(t, file, string(members))
	return runAuthorize(t, d, append([]string{"--from", file}, args...)...)
}

// runAuthorize runs `tbfg-node authorize args...` with guix on PATH and d's
// environment, so that the real `guix archive --authorize` edits d's ACL,
// and returns what it printed.
func runAuthorize(t *testing.T, d *guixtest.PrivateDaemon, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary.client, append([]string{"authorize"}, args...)...)
	cmd.Env = append(os.Environ(), d.Env()...)
	cmd.Env = append(cmd.Env, "PATH="+filepath.Dir(guixtest.Guix)+":"+os.Getenv("PATH"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tbfg-node authorize %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	t.Logf("tbfg-node authorize %s: %s", strings.Join(args, " "), strings.TrimSpace(stdout.String()))
	return stdout.String()
}

// aclKeys reads the keys of d's ACL.
func aclKeys(t *testing.T, d *guixtest.PrivateDaemon) []pki.PublicKey {
	t.Helper()
	b, err := os.ReadFile(d.ACLFile())
	if err != nil {
		t.Fatal(err)
	}
	acl, err := pki.ParseACL(b)
	if err != nil {
		t.Fatalf("%s: %v\n%s", d.ACLFile(), err, b)
	}
	return acl.Keys
}

// nodeKey is the Guix public key of h's node.
func nodeKey(t *testing.T, h *host) pki.PublicKey {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.dataDir, "signing-key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := pki.ParsePublicKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sameKeys reports whether a and b hold the same keys, each once.
func sameKeys(a, b []pki.PublicKey) bool {
	key := func(k pki.PublicKey) string { return k.String() }
	as, bs := slices.Sorted(slices.Values(mapSlice(a, key))), slices.Sorted(slices.Values(mapSlice(b, key)))
	return slices.Equal(as, bs) && len(slices.Compact(as)) == len(a)
}

func mapSlice[T, U any](in []T, f func(T) U) []U {
	out := make([]U, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

// guixBuild runs `guix build --no-grafts [--substitute-urls=URL] PATH...`
// against d, as a user of its machine would, and returns guix's error
// output. url "" passes no URLs: the daemon's own and discovered ones.
func guixBuild(d *guixtest.PrivateDaemon, url string, paths ...store.Path) (string, error) {
	args := []string{"build", "--no-grafts"}
	if url != "" {
		args = append(args, "--substitute-urls="+url)
	}
	for _, p := range paths {
		args = append(args, string(p))
	}
	_, stderr, err := d.Run(args...)
	return stderr, err
}

// valid returns those of paths valid in the store, as d's database says.
func valid(d *guixtest.PrivateDaemon, paths ...store.Path) []store.Path {
	infos := d.PathInfos(mapSlice(paths, store.Path.String)...)
	return slices.DeleteFunc(slices.Clone(paths), func(p store.Path) bool { _, ok := infos[string(p)]; return !ok })
}

// deleteFromStore deletes from the machine's store what a test put there,
// when it ends; paths that are not valid are skipped.
func deleteFromStore(t *testing.T, d *guixtest.PrivateDaemon, paths func() []store.Path) {
	t.Cleanup(func() {
		there := valid(d, paths()...)
		if len(there) == 0 {
			return
		}
		if _, stderr, err := d.Run(append([]string{"gc", "--delete"}, mapSlice(there, store.Path.String)...)...); err != nil {
			t.Errorf("guix gc --delete: %v\n%s", err, stderr)
		}
	})
}

// servedNarinfo fetches p's narinfo from server, from client's namespace.
func servedNarinfo(t *testing.T, client, server *host, p store.Path) *narinfo.Narinfo {
	t.Helper()
	text, err := curl(client, substituteURL(server)+"/"+p.HashPart()+".narinfo")
	if err != nil {
		t.Fatal(err)
	}
	ni, err := narinfo.Parse(text, store.GuixDir)
	if err != nil {
		t.Fatalf("narinfo of %s: %v\n%s", p, err, text)
	}
	return ni
}

// checkRecorded checks what d recorded of each of paths against its
// narinfo on server: NarHash, NarSize and References.
func checkRecorded(t *testing.T, d *guixtest.PrivateDaemon, client, server *host, paths []store.Path) {
	t.Helper()
	infos := d.PathInfos(mapSlice(paths, store.Path.String)...)
	for _, p := range paths {
		ni := servedNarinfo(t, client, server, p)
		refs := mapSlice(ni.References, func(r string) string { return string(store.GuixDir) + "/" + r })
		slices.Sort(refs)
		got, ok := infos[string(p)]
		if !ok || got.NarHash != ni.NarHash || uint64(got.NarSize) != ni.NarSize || !slices.Equal(got.References, refs) {
			t.Errorf("%s: guix-daemon recorded %+v (valid: %v); the narinfo says %s, %d bytes, references %v",
				p, got, ok, ni.NarHash, ni.NarSize, refs)
		}
	}
}
