package membership

import (
	"errors"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/mesh"
	"github.com/tbfg/tbfg-node/scheduler"
)

func member(id, version string, format int) mesh.Member {
	return mesh.Member{ID: id, Status: &mesh.NodeStatus{Version: version, Format: format, MinFormat: min(format, 1)}}
}

func TestMeshFormat(t *testing.T) {
	tests := []struct {
		name    string
		members []mesh.Member
		want    int
		oldest  string
	}{
		{"alone", nil, scheduler.FormatVersion, ""},
		{"all current", []mesh.Member{member("a", "v2", scheduler.FormatVersion), member("b", "v2", scheduler.FormatVersion)},
			scheduler.FormatVersion, ""},
		{"newer members than this binary", []mesh.Member{member("a", "v9", 9)}, scheduler.FormatVersion, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, oldest := MeshFormat(tt.members); got != tt.want || oldest != tt.oldest {
				t.Errorf("MeshFormat = %d, %q; want %d, %q", got, oldest, tt.want, tt.oldest)
			}
		})
	}
}

func TestCheckMeshFormat(t *testing.T) {
	ms := []mesh.Member{member("new", "v0.5.0", 2), member("old", "v0.3.0", 0), {ID: "unheard"}}
	if err := CheckMeshFormat(ms, 1, "v0.5.0"); err != nil {
		t.Fatalf("every member reads format 1: %v", err)
	}
	err := CheckMeshFormat(ms, 2, "v0.6.0")
	if !errors.Is(err, ErrMeshTooOld) {
		t.Fatalf("a member reading format 1 under a binary writing 2: %v", err)
	}
	for _, want := range []string{"member old runs tbfg-node v0.3.0", "reads replicated formats up to 1",
		"this tbfg-node (v0.6.0) writes format 2", "upgrade old first"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestUpgradeHint(t *testing.T) {
	ms := []mesh.Member{member("b", "v0.5.0", 2), member("old", "v0.4.0", 1), member("a", "v0.6.0", 3)}
	if got, want := UpgradeHint(ms, 2), "members that read format 2: a runs v0.6.0, b runs v0.5.0"; got != want {
		t.Errorf("UpgradeHint = %q; want %q", got, want)
	}
	if got := UpgradeHint(ms, 4); got != "" {
		t.Errorf("UpgradeHint with no member reading format 4 = %q", got)
	}
}

// TestIncompatibleMemberReported: a member gossiping formats below what this
// node writes is reported once, from the loop, with ErrMeshTooOld.
func TestIncompatibleMemberReported(t *testing.T) {
	fx := newFixture(t)
	got := make(chan error, 2)
	fx.m.cfg.MinFormat, fx.m.cfg.Version = 2, "v0.6.0"
	fx.m.cfg.Incompatible = func(err error) { got <- err }
	fx.mesh.setMembers(member("self", "v0.6.0", 2), member("old", "v0.4.0", 1))
	fx.m.onTick(t.Context())
	fx.m.onTick(t.Context())
	select {
	case err := <-got:
		if !errors.Is(err, ErrMeshTooOld) || !strings.Contains(err.Error(), "member old runs tbfg-node v0.4.0") {
			t.Errorf("Incompatible(%v)", err)
		}
	default:
		t.Fatal("Incompatible not called")
	}
	if len(got) != 0 {
		t.Error("Incompatible called twice")
	}
}
