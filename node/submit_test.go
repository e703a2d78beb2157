package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/node/datadir"
	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/derivation"
	"github.com/tbfg/tbfg-node/substitutes/narinfo"
	"github.com/tbfg/tbfg-node/substitutes/nixkey"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

// writeTestDrv writes a derivation named name with inputs into dir, as a
// copy of a store holds it, and returns its store path.
func writeTestDrv(t *testing.T, dir, name string, srcs []store.Path, inputs ...store.Path) store.Path {
	t.Helper()
	d := &derivation.Derivation{
		Outputs:   map[string]derivation.Output{"out": {}},
		InputDrvs: map[store.Path][]string{},
		InputSrcs: srcs,
		System:    "x86_64-linux",
		Builder:   "/bin/sh",
		Args:      []string{"-c", "echo " + name + " > $out"},
		Env:       map[string]string{"name": name, "out": ""},
	}
	for _, in := range inputs {
		d.InputDrvs[in] = []string{"out"}
	}
	if err := derivation.NewHasher(store.GuixDir, derivation.DirLoader{Root: dir, Dir: store.GuixDir}).Fill(d, name); err != nil {
		t.Fatal(err)
	}
	p, err := derivation.StorePath(store.GuixDir, d, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, p.Base()), d.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func file(dir string, p store.Path) string { return filepath.Join(dir, p.Base()) }

// TestNodeSubmitQueuesAndAllocates submits a small graph to a one-node mesh:
// the .drv files land in the node's store, each derivation gets one build,
// submitting again shares them, the leader allocates ready builds to the
// node within its max builds while the dependent waits, and the queue
// records the .drv files as held by the node with signed narinfos.
func TestNodeSubmitQueuesAndAllocates(t *testing.T) {
	dir := t.TempDir()
	cfg := loopbackConfig(t, "n1", ModeInit, dir)
	cfg.MaxBuilds, cfg.Systems = 2, []string{"x86_64-linux"}
	r := startNode(t, cfg)
	c := adminapi.NewClient(dir)
	defer c.Close()
	ctx := context.Background()

	src := t.TempDir()
	a, b, cc := writeTestDrv(t, src, "a", nil), writeTestDrv(t, src, "b", nil), writeTestDrv(t, src, "c", nil)
	top := writeTestDrv(t, src, "top", nil, a, b)
	res, err := c.Submit(ctx, adminapi.SubmitRequest{Derivations: []string{file(src, top), file(src, cc)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Roots) != 2 || len(res.Builds) != 4 || res.Roots[0].Derivation != string(top) {
		t.Fatalf("submit result %+v: want 2 roots (top first) and 4 builds", res)
	}
	// The .drv files are now in the node's store, so the store path works.
	again, err := c.Submit(ctx, adminapi.SubmitRequest{Derivations: []string{string(top)}})
	if err != nil {
		t.Fatal(err)
	}
	if again.Roots[0].ID != res.Roots[0].ID || len(again.Builds) != 3 {
		t.Errorf("second submission by store path: %+v, want build %d shared", again, res.Roots[0].ID)
	}
	self := r.n.ID()
	waitUntil(t, "two leaves allocated to the node, the dependent queued", func() error {
		builds, err := c.Builds(ctx, adminapi.BuildQuery{})
		if err != nil {
			return err
		}
		if len(builds) != 4 {
			return fmt.Errorf("%d builds, want 4", len(builds))
		}
		allocated := 0
		for _, bv := range builds {
			switch {
			case bv.Derivation == string(top) && bv.State != "queued":
				t.Fatalf("dependent %s is %s before its inputs exist", top, bv.State)
			case bv.State == "allocated" && bv.Node == self:
				allocated++
			}
		}
		if allocated != 2 {
			return fmt.Errorf("%d allocated, want 2 (max builds)", allocated)
		}
		return nil
	})
	got, err := c.Builds(ctx, adminapi.BuildQuery{IDs: []uint64{res.Roots[1].ID}})
	if err != nil || len(got) != 1 || got[0].Derivation != string(cc) || got[0].Submitted == nil {
		t.Errorf("build %d: %+v, %v; want %s", res.Roots[1].ID, got, err, cc)
	}
	if k, err := datadir.LoadOrCreateKeys(dir, "again"); err != nil || k.GuixPublic() != r.n.keys.GuixPublic() ||
		k.Nix.String() != r.n.keys.Nix.String() {
		t.Errorf("keys in %s: %v; want those the node signs with", dir, err)
	}
	checkSignedItems(t, r.n, dir, top, a, b, cc)
}

// checkSignedItems checks that the build queue records the .drv files drvs
// as held by n, each with a narinfo signed by n's Guix and Nix keys.
func checkSignedItems(t *testing.T, n *Node, dir string, drvs ...store.Path) {
	t.Helper()
	gpub, _ := os.ReadFile(filepath.Join(dir, datadir.GuixPublicKeyFile))
	acl, err := pki.ParseACL(gpub)
	if err != nil {
		t.Fatal(err)
	}
	npub, _ := os.ReadFile(filepath.Join(dir, datadir.NixPublicKeyFile))
	nkeys, err := nixkey.ParsePublicKeys(npub)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range drvs {
		var it scheduler.ItemInfo
		var ok bool
		n.FSM().Read(func(st *scheduler.State) { it, ok = st.Item(string(p)) })
		if !ok || !slices.Contains(it.Holders, n.ID()) {
			t.Errorf("%s: item %+v, %v; want it held by %s", p, it, ok, n.ID())
			continue
		}
		ni, err := narinfo.Parse([]byte(it.Narinfo), store.GuixDir)
		if err != nil {
			t.Errorf("%s: narinfo: %v", p, err)
			continue
		}
		if ni.StorePath != p || ni.NarHash != it.NarHash {
			t.Errorf("%s: narinfo for %s with NarHash %s, item has %s", p, ni.StorePath, ni.NarHash, it.NarHash)
		}
		if st := narinfo.VerifyGuix(ni, acl); st != pki.Valid {
			t.Errorf("%s: Guix signature: %v", p, st)
		}
		if !narinfo.VerifyNix(ni, nkeys) {
			t.Errorf("%s: Nix signature does not verify", p)
		}
	}
}

// TestNodeSubmitRejectsBadDerivations checks that what cannot be built is
// refused with a message naming the problem, and nothing is queued.
func TestNodeSubmitRejectsBadDerivations(t *testing.T) {
	dir := t.TempDir()
	cfg := loopbackConfig(t, "n1", ModeInit, dir)
	cfg.Systems = []string{"x86_64-linux"}
	startNode(t, cfg)
	c := adminapi.NewClient(dir)
	defer c.Close()
	ctx := context.Background()

	src := t.TempDir()
	good := writeTestDrv(t, src, "good", nil)
	missingSrc := writeTestDrv(t, src, "needs-src", []store.Path{"/gnu/store/00000000000000000000000000000000-src"})
	tampered := filepath.Join(t.TempDir(), good.Base())
	data, _ := os.ReadFile(file(src, good))
	os.WriteFile(tampered, []byte(strings.Replace(string(data), "echo good", "echo evil", 1)), 0o644)
	misnamed := filepath.Join(t.TempDir(), missingSrc.HashPart()+"-good.drv")
	os.WriteFile(misnamed, data, 0o644)
	wrongOut := writeWrongOutput(t, t.TempDir(), file(src, good))
	renamed := filepath.Join(t.TempDir(), "good.drv")
	os.WriteFile(renamed, data, 0o644)
	orphanDir := t.TempDir()
	orphan := writeTestDrv(t, src, "orphan", nil, good)
	if err := os.Rename(file(src, orphan), file(orphanDir, orphan)); err != nil { // away from its input
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, arg, want string
	}{
		{"tampered", tampered, "derivation does not recompute"},
		{"wrong output path", wrongOut, `output "out": path is`},
		{"other item's name", misnamed, "its contents give " + string(good)},
		{"not a store name", renamed, "not that of a .drv store item"},
		{"missing source", file(src, missingSrc), "is not in this node's store"},
		{"missing input", file(orphanDir, orphan), good.Base()},
		{"relative", "good.drv", "absolute file name"},
		{"absent", filepath.Join(src, "00000000000000000000000000000000-x.drv"), "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Submit(ctx, adminapi.SubmitRequest{Derivations: []string{tc.arg}})
			if !errors.Is(err, adminapi.ErrBadRequest) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Submit(%s) = %v, want a bad request saying %q", tc.arg, err, tc.want)
			}
		})
	}
	if builds, err := c.Builds(ctx, adminapi.BuildQuery{}); err != nil || len(builds) != 0 {
		t.Errorf("builds after rejected submissions: %+v, %v; want none", builds, err)
	}
	if _, err := c.Builds(ctx, adminapi.BuildQuery{IDs: []uint64{7}}); !errors.Is(err, adminapi.ErrNoBuild) {
		t.Errorf("Builds of an unknown id: %v, want adminapi.ErrNoBuild", err)
	}
	if _, err := c.Builds(ctx, adminapi.BuildQuery{States: []string{"sleeping"}}); !errors.Is(err, adminapi.ErrBadRequest) {
		t.Errorf("Builds in an unknown state: %v, want adminapi.ErrBadRequest", err)
	}
}

// writeWrongOutput writes a copy of the derivation in the file drv with
// another output path, under the store name of the copy's contents, and
// returns the file name.
func writeWrongOutput(t *testing.T, dir, drv string) string {
	t.Helper()
	data, err := os.ReadFile(drv)
	if err != nil {
		t.Fatal(err)
	}
	d, err := derivation.Parse(data, store.GuixDir)
	if err != nil {
		t.Fatal(err)
	}
	out := d.Outputs["out"]
	out.Path = "/gnu/store/00000000000000000000000000000000-good"
	d.Outputs["out"] = out
	p, err := derivation.StorePath(store.GuixDir, d, "good")
	if err != nil {
		t.Fatal(err)
	}
	name := file(dir, p)
	if err := os.WriteFile(name, d.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}
