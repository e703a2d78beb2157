package meshsource

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/testlog"
	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/local"
	"github.com/tbfg/tbfg-node/substitutes/nixkey"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// member is one simulated node: its store, keys and Source.
type member struct {
	id     string
	store  *local.Store
	signer *Signer
	src    *Source
}

// mesh is a replicated state shared by members through a LocalApplier.
type mesh struct {
	fsm    *scheduler.FSM
	app    *scheduler.LocalApplier
	remote *StoreRemote
}

func newMesh(t testing.TB) *mesh {
	fsm := scheduler.NewFSM(testLogger(t, "fsm"))
	return &mesh{fsm: fsm, app: &scheduler.LocalApplier{FSM: fsm}, remote: NewStoreRemote()}
}

// join makes a member with a fresh store and keys and registers its key.
func (m *mesh) join(t testing.TB, id string) *member {
	t.Helper()
	st, err := local.Open(filepath.Join(t.TempDir(), "store"), store.GuixDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	gk, err := pki.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	nk, err := nixkey.Generate(id+"-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	m.apply(t, &scheduler.NodeJoined{Time: t0, Node: id, Key: string(gk.Public.Marshal()),
		Systems: []string{"x86_64-linux"}, MaxBuilds: 2})
	src, err := New(Config{Self: id, FSM: m.fsm, Store: st, Remote: m.remote, Logger: testLogger(t, id)})
	if err != nil {
		t.Fatal(err)
	}
	m.remote.Add(id, st)
	return &member{id: id, store: st, signer: &Signer{Host: id, Guix: gk, Nix: nk}, src: src}
}

func (m *mesh) apply(t testing.TB, c scheduler.Command) {
	t.Helper()
	if _, err := m.app.Apply(context.Background(), scheduler.Encode(c)); err != nil {
		t.Fatalf("apply %T: %v", c, err)
	}
}

// hold registers paths (and their closures) of mb's store as held by mb.
func (m *mesh) hold(t testing.TB, mb *member, paths ...store.Path) {
	t.Helper()
	items, err := mb.signer.Items(mb.store, paths...)
	if err != nil {
		t.Fatal(err)
	}
	m.apply(t, &scheduler.HolderAdded{Time: t0, Node: mb.id, Items: items})
}

func addText(t testing.TB, st *local.Store, name, text string, refs ...store.Path) store.Path {
	t.Helper()
	p, err := st.AddText(context.Background(), name, []byte(text), refs)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testLogger routes a component's logs to t.Log.
func testLogger(t testing.TB, prefix string) *slog.Logger { return testlog.New(t, prefix) }
