package meshsource

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"testing"

	"github.com/tbfg/tbfg-node/internal/nixtest"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/nar"
	"github.com/tbfg/tbfg-node/substitutes/narcache"
	"github.com/tbfg/tbfg-node/substitutes/publish"
)

// TestNixCopiesFromAnyMember has real Nix, with require-sigs and only the
// holder's Nix key trusted, copy a closure held by member A from the
// substitute server of member B, whose Source streams the NARs from A through
// Remote; and fail when B's Remote tampers with the NARs.
func TestNixCopiesFromAnyMember(t *testing.T) {
	nixtest.Require(t)
	cases := []struct {
		name   string
		tamper bool
	}{{"intact", false}, {"tampered NAR", true}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newMesh(t)
			a, b := m.join(t, "A"), m.join(t, "B")
			dep := addText(t, a.store, "dep", "a dependency with some contents\n")
			top := addText(t, a.store, "top", "uses "+string(dep)+"\n", dep)
			m.hold(t, a, top)
			if c.tamper {
				b.src.cfg.Remote = tampering(a.store)
			}
			url := serve(t, b.src)
			client := nixtest.New(t, store.GuixDir, nixtest.WithConf("require-sigs = true",
				"trusted-public-keys = "+a.signer.Nix.Public().String(), "download-attempts = 1"))
			cmd := client.Cmd("nix", "copy", "--from", url+"?store=/gnu/store", string(top))
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if c.tamper {
				if err == nil {
					t.Fatal("nix copy of tampered NARs succeeded")
				}
				if _, err := nar.HashPath(client.RealPath(top)); err == nil {
					t.Error("tampered item in the client's store")
				}
				return
			}
			if err != nil {
				t.Fatalf("nix copy --from %s: %v\n%s", url, err, stderr.String())
			}
			for _, p := range []store.Path{dep, top} {
				want, _ := a.store.Query(p)
				got, err := nar.HashPath(client.RealPath(p))
				if err != nil || got != want.Nar {
					t.Errorf("%s in Nix's store: %v %v, want %v", p, got, err, want.Nar)
				}
			}
			nixtest.Output(t, client.Cmd("nix-store", "--verify-path", string(top)))
		})
	}
}

// serve runs a substitute server over src on 127.0.0.1 until the test ends.
func serve(t *testing.T, src *Source) string {
	cache, err := narcache.Open(filepath.Join(t.TempDir(), "cache"), narcache.Options{MaxBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close() })
	s, err := publish.New(publish.Config{StoreDir: store.GuixDir, Source: src, Cache: cache,
		Compressions: []string{}, Logger: testLogger(t, "publish")})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}
