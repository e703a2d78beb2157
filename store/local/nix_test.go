package local

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/internal/nixtest"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/nar"
)

// TestAgainstNix copies the .drv closure that real Nix instantiated into a
// local store, both as NARs checked against Nix's NarHash and NarSize and as
// text items, and checks that the paths and hashes agree with Nix's.
func TestAgainstNix(t *testing.T) {
	n := nixtest.New(t, store.GuixDir)
	expr, err := filepath.Abs(filepath.Join("testdata", "drvs.nix"))
	must(t, err)
	top := n.Run(t, "nix-instantiate", expr)
	closure := strings.Fields(n.Run(t, "nix-store", "-qR", top))
	if len(closure) != 2 {
		t.Fatalf("closure %v", closure)
	}
	viaNAR, viaText := openTest(t), openTest(t)
	for _, p := range topoOrder(t, n, closure) {
		info := nixInfo(t, n, p)
		// nix-store --dump cannot read a chroot store's real directory, so
		// the archive is made here; Nix's NarHash is what checks it.
		var dump bytes.Buffer
		must(t, nar.Dump(&dump, n.RealPath(p)))
		must(t, viaNAR.AddFromNAR(context.Background(), info, &dump))
		contents, err := os.ReadFile(n.RealPath(p))
		must(t, err)
		got, err := viaText.AddText(context.Background(), p.Name(), contents, info.References)
		must(t, err)
		q, err := viaText.Query(got)
		must(t, err)
		if got != p || q.Nar != info.Nar {
			t.Errorf("AddText made %s %s, Nix has %s %s", got, q.NarHash(), p, info.NarHash())
		}
	}
}

// nixInfo asks Nix for what it records about p.
func nixInfo(t *testing.T, n *nixtest.Nix, p store.Path) *Info {
	t.Helper()
	hash := n.Run(t, "nix-store", "-q", "--hash", string(p))
	size, err := strconv.ParseInt(n.Run(t, "nix-store", "-q", "--size", string(p)), 10, 64)
	must(t, err)
	sum, err := ParseSum(hash, size)
	must(t, err)
	return &Info{Path: p, Nar: sum, References: pathsOf(n.Run(t, "nix-store", "-q", "--references", string(p)))}
}

// topoOrder sorts paths so that references come first.
func topoOrder(t *testing.T, n *nixtest.Nix, paths []string) []store.Path {
	var out []store.Path
	done := map[store.Path]bool{}
	var visit func(p store.Path)
	visit = func(p store.Path) {
		if done[p] {
			return
		}
		done[p] = true
		for _, r := range pathsOf(n.Run(t, "nix-store", "-q", "--references", string(p))) {
			visit(r)
		}
		out = append(out, p)
	}
	for _, p := range paths {
		visit(store.Path(p))
	}
	return out
}

func pathsOf(s string) []store.Path {
	var out []store.Path
	for _, f := range strings.Fields(s) {
		out = append(out, store.Path(f))
	}
	slices.Sort(out)
	return out
}
