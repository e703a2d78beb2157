package drvgraph

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/internal/nixtest"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/nar"
)

// TestNixBuildsGraph has real Nix 2.8, sandboxed with busybox as /bin/sh,
// accept a generated graph in a /gnu/store store and build it: every output
// but the failing pair is built, each names exactly its inputs' outputs as
// references, and "broken" fails.
func TestNixBuildsGraph(t *testing.T) {
	n := nixtest.New(t, store.GuixDir)
	g, err := New(Options{System: nixSystem(t, n), Tag: t.Name(), Chain: 2, Leaves: 3, Tops: 1, PerTop: 2, Fail: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := g.Write(dir); err != nil {
		t.Fatal(err)
	}
	cmd := n.Cmd("nix-store", "--import")
	cmd.Stdin = bytes.NewReader(export(t, dir, g))
	nixtest.Output(t, cmd)
	var good []string
	for _, p := range g.Order {
		if p != g.Failing && p != g.FailedDependent {
			good = append(good, string(p))
		}
	}
	n.Run(t, "nix-store", append([]string{"--realise"}, good...)...)
	for _, p := range g.Order[:len(good)] {
		checkReferences(t, n, g, p)
	}
	out, err := n.Cmd("nix-store", "--realise", string(g.FailedDependent)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "broken: failing on purpose") {
		t.Errorf("building needs-broken: %v, want broken to fail on purpose:\n%s", err, out)
	}
}

// nixSystem is the system type Nix builds for here.
func nixSystem(t *testing.T, n *nixtest.Nix) string {
	t.Helper()
	return n.Run(t, "nix", "eval", "--raw", "--impure", "--expr", "builtins.currentSystem")
}

// export is g's .drv files in the format of `nix-store --export`, for
// `nix-store --import`: for each, 1, its NAR, the magic "NIXE", its path,
// its references and no deriver or signature; then 0.
func export(t *testing.T, root string, g *Graph) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, p := range g.Order {
		exportInt(&b, 1)
		if err := nar.Dump(&b, filepath.Join(root, p.Base())); err != nil {
			t.Fatal(err)
		}
		exportInt(&b, 0x4558494e)
		exportString(&b, string(p))
		exportInt(&b, uint64(len(g.Inputs[p])))
		for _, in := range g.Inputs[p] {
			exportString(&b, string(in))
		}
		exportString(&b, "")
		exportInt(&b, 0)
	}
	exportInt(&b, 0)
	return b.Bytes()
}

func exportInt(b *bytes.Buffer, n uint64) {
	b.Write(binary.LittleEndian.AppendUint64(nil, n))
}

// exportString writes s as Nix's wire protocol does: length, bytes, zero
// padding to a multiple of 8.
func exportString(b *bytes.Buffer, s string) {
	exportInt(b, uint64(len(s)))
	b.WriteString(s)
	b.Write(make([]byte, (8-len(s)%8)%8))
}

// checkReferences checks that Nix found exactly the inputs' outputs as the
// references of p's output, and that the output names them.
func checkReferences(t *testing.T, n *nixtest.Nix, g *Graph, p store.Path) {
	t.Helper()
	out := g.Output(p)
	var want []string
	for _, in := range g.Inputs[p] {
		want = append(want, string(g.Output(in)))
	}
	got := strings.Fields(n.Run(t, "nix-store", "--query", "--references", string(out)))
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: references %v, want %v", out.Name(), got, want)
	}
	data, err := os.ReadFile(filepath.Join(n.RealPath(out), "name"))
	if err != nil || strings.TrimSpace(string(data)) != strings.TrimSuffix(p.Name(), ".drv") {
		t.Errorf("%s/name: %q, %v", out, data, err)
	}
}
