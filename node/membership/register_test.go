package membership

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/mesh"
)

// TestEnsureJoined checks when a node commits its registration: once the
// mesh has it in its configuration, not again while the state has it with
// the same configuration, not again within half of RemoveAfter of the last
// one, and never while it leaves.
func TestEnsureJoined(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t)
	if err := fx.m.EnsureJoined(ctx); !errors.Is(err, errNotInConfiguration) || fx.mesh.applies.Load() != 0 {
		t.Fatalf("outside the configuration: %v after %d commits; want errNotInConfiguration and none", err, fx.mesh.applies.Load())
	}
	fx.mesh.setMembers(mesh.Member{ID: "self"})
	if err := fx.m.EnsureJoined(ctx); err != nil {
		t.Fatal(err)
	}
	if mi, ok := fx.member("self"); !ok || mi.Status != "active" || mi.Key != "key-self" || mi.MaxBuilds != 2 || !mi.Joined.Equal(t0) {
		t.Fatalf("registered as %+v", mi)
	}
	for _, step := range []struct {
		name    string
		edit    func()
		commits int32
	}{
		{"registered already", func() {}, 1},
		{"new configuration, just registered", func() { fx.m.cfg.Registration.MaxBuilds = 3 }, 1},
		{"new configuration, half of RemoveAfter later", func() { fx.clock.Add(removeAfter/2 + time.Second) }, 2},
		{"leaving", func() { fx.m.cfg.Registration.MaxBuilds = 4; fx.clock.Add(removeAfter); fx.m.leaving.Store(true) }, 2},
	} {
		step.edit()
		if err := fx.m.EnsureJoined(ctx); err != nil || fx.mesh.applies.Load() != step.commits {
			t.Errorf("%s: %v after %d commits, want %d", step.name, err, fx.mesh.applies.Load(), step.commits)
		}
	}
	if mi, _ := fx.member("self"); mi.MaxBuilds != 3 {
		t.Errorf("registered with max builds %d, want 3", mi.MaxBuilds)
	}
}

// TestRunRegistersAndLeave checks that Run registers the node and then
// opens Registered, and that Leave takes the node out of the build queue
// before the mesh, for good.
func TestRunRegistersAndLeave(t *testing.T) {
	fx := newFixture(t)
	fx.mesh.setMembers(mesh.Member{ID: "self"})
	fx.run(t)
	<-fx.m.Registered()
	if mi, ok := fx.member("self"); !ok || mi.Status != "active" {
		t.Fatalf("Registered open with the state listing %+v", mi)
	}
	ctx := context.Background()
	if err := fx.m.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	if mi, _ := fx.member("self"); mi.Status != "left" || !fx.mesh.left {
		t.Fatalf("after Leave: member %q, mesh left %v", mi.Status, fx.mesh.left)
	}
	fx.clock.Add(removeAfter)
	if err := fx.m.EnsureJoined(ctx); err != nil {
		t.Fatal(err)
	}
	if mi, _ := fx.member("self"); mi.Status != "left" {
		t.Errorf("a leaving node registered again: %q", mi.Status)
	}
}
