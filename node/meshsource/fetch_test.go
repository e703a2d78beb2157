package meshsource

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/local"
	"github.com/tbfg/tbfg-node/substitutes/narinfo"
	"github.com/tbfg/tbfg-node/substitutes/pki"
	"github.com/tbfg/tbfg-node/substitutes/publish"
)

// TestFetchClosure fetches an item and its reference from another member's
// store: both become valid with the holder's NarHash and references.
func TestFetchClosure(t *testing.T) {
	m := newMesh(t)
	a, b := m.join(t, "A"), m.join(t, "B")
	dep := addText(t, a.store, "dep", "a dependency\n")
	top := addText(t, a.store, "top", "uses "+string(dep)+"\n", dep)
	m.hold(t, a, top)
	if err := b.src.Fetch(context.Background(), top); err != nil {
		t.Fatal(err)
	}
	for _, p := range []store.Path{dep, top} {
		want, err := a.store.Query(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.store.Query(p)
		if err != nil {
			t.Fatalf("%s not fetched: %v", p, err)
		}
		if got.Nar != want.Nar || len(got.References) != len(want.References) || got.CA != want.CA {
			t.Errorf("%s fetched as %+v, holder has %+v", p, got, want)
		}
	}
	if err := b.src.Fetch(context.Background(), top); err != nil {
		t.Errorf("fetching valid items again: %v", err)
	}
}

// TestFetchRefused checks that nothing enters the store from a tampered NAR,
// an unsigned narinfo, a narinfo signed by a key no member registered, one
// that disagrees with the state's record, or an item no one holds.
func TestFetchRefused(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, m *mesh, a *member, p store.Path)
		want  error
	}{
		{"tampered NAR", func(t *testing.T, m *mesh, a *member, p store.Path) {
			m.hold(t, a, p)
		}, local.ErrHashMismatch},
		{"unsigned narinfo", func(t *testing.T, m *mesh, a *member, p store.Path) {
			it := item(t, a, p)
			ni := parseNarinfo(t, it.Narinfo)
			ni.Signatures = nil
			it.Narinfo = marshal(t, ni)
			m.apply(t, &scheduler.HolderAdded{Time: t0, Node: "A", Items: []scheduler.Item{it}})
		}, ErrUntrusted},
		{"unknown key", func(t *testing.T, m *mesh, a *member, p store.Path) {
			other, err := pki.GenerateKey(nil)
			if err != nil {
				t.Fatal(err)
			}
			a.signer.Guix = other
			m.hold(t, a, p)
		}, ErrUntrusted},
		{"record differs", func(t *testing.T, m *mesh, a *member, p store.Path) {
			it := item(t, a, p)
			it.NarSize++
			m.apply(t, &scheduler.HolderAdded{Time: t0, Node: "A", Items: []scheduler.Item{it}})
		}, ErrRecordMismatch},
		{"not held", func(t *testing.T, m *mesh, a *member, p store.Path) {}, ErrNotHeld},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newMesh(t)
			a, b := m.join(t, "A"), m.join(t, "B")
			p := addText(t, a.store, "item", "some contents\n")
			c.setup(t, m, a, p)
			b.src.cfg.Remote = tampering(a.store)
			err := b.src.Fetch(context.Background(), p)
			if !errors.Is(err, c.want) {
				t.Fatalf("fetch: %v, want %v", err, c.want)
			}
			if ok, _ := b.store.IsValid(p); ok {
				t.Error("refused item is valid")
			}
			if entries, _ := os.ReadDir(b.store.RealDir()); len(entries) != 0 {
				t.Errorf("refused fetch left %d entries in the store directory", len(entries))
			}
		})
	}
}

// tampering is a Remote that serves st's NARs with their last content byte
// changed, as a hostile or broken peer would.
func tampering(st *local.Store) Remote {
	return RemoteFunc(func(_ context.Context, _ string, p store.Path) (io.ReadCloser, error) {
		var buf bytes.Buffer
		if err := st.Dump(p, &buf); err != nil {
			return nil, err
		}
		b := buf.Bytes()
		i := bytes.LastIndex(b, []byte("contents"))
		b[i] ^= 0x20
		return io.NopCloser(bytes.NewReader(b)), nil
	})
}

func item(t testing.TB, mb *member, p store.Path) scheduler.Item {
	t.Helper()
	items, err := mb.signer.Items(mb.store, p)
	if err != nil {
		t.Fatal(err)
	}
	return items[0]
}

func parseNarinfo(t testing.TB, text string) *narinfo.Narinfo {
	t.Helper()
	ni, err := narinfo.Parse([]byte(text), store.GuixDir)
	if err != nil {
		t.Fatal(err)
	}
	return ni
}

func marshal(t testing.TB, ni *narinfo.Narinfo) string {
	t.Helper()
	b, err := ni.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSourceServes checks the publish.Source side: narinfo of any held item,
// NAR from the local store or a remote holder, 404 for unknown items.
func TestSourceServes(t *testing.T) {
	m := newMesh(t)
	a, b := m.join(t, "A"), m.join(t, "B")
	p := addText(t, a.store, "served", "served contents\n")
	m.hold(t, a, p)
	ctx := context.Background()
	ni, err := b.src.Narinfo(ctx, p.HashPart())
	if err != nil {
		t.Fatal(err)
	}
	if st := narinfo.VerifyGuix(ni, &pki.ACL{Keys: []pki.PublicKey{a.signer.Guix.Public}}); st != pki.Valid {
		t.Errorf("served narinfo: %s", st)
	}
	var want bytes.Buffer
	if err := a.store.Dump(p, &want); err != nil {
		t.Fatal(err)
	}
	for _, mb := range []*member{a, b} {
		rc, err := mb.src.OpenNAR(ctx, p)
		if err != nil {
			t.Fatalf("%s: %v", mb.id, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%s served a different NAR (%v)", mb.id, err)
		}
	}
	if _, err := b.src.OpenLocalNAR(p); !errors.Is(err, publish.ErrNotFound) {
		t.Errorf("B served a NAR it does not hold as its own: %v", err)
	}
	if rc, err := a.src.OpenLocalNAR(p); err != nil {
		t.Errorf("A's own NAR: %v", err)
	} else {
		rc.Close()
	}
	if _, err := b.src.Narinfo(ctx, "00000000000000000000000000000000"); !errors.Is(err, publish.ErrNotFound) {
		t.Errorf("unknown narinfo: %v", err)
	}
	if _, err := b.src.OpenNAR(ctx, store.Path(store.GuixDir+"/00000000000000000000000000000000-x")); !errors.Is(err, publish.ErrNotFound) {
		t.Errorf("unknown NAR: %v", err)
	}
	if _, err := b.src.Log(ctx, "../../etc/passwd"); !errors.Is(err, publish.ErrNotFound) {
		t.Errorf("bad log name: %v", err)
	}
}
