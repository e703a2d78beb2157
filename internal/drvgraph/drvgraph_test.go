package drvgraph

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/derivation"
)

const testSystem = "x86_64-linux"

// TestShapes checks that each part of the graph has the size and the inputs
// the options ask for, inputs always coming before their dependents.
func TestShapes(t *testing.T) {
	tests := []struct {
		name                     string
		o                        Options
		chain, leaves, tops, all int
	}{
		{"leaves only", Options{Leaves: 3}, 0, 3, 0, 3},
		{"queue test", Options{Leaves: 10, Tops: 2, PerTop: 3}, 0, 10, 2, 12},
		{"chain only", Options{Chain: 4}, 4, 0, 0, 4},
		{"demo", Options{Chain: 5, Leaves: 20, Tops: 4, PerTop: 5, Fail: true}, 5, 20, 4, 31},
		{"fail alone", Options{Fail: true}, 0, 0, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.System = testSystem
			g, err := New(tt.o)
			if err != nil {
				t.Fatal(err)
			}
			if len(g.Chain) != tt.chain || len(g.Leaves) != tt.leaves || len(g.Tops) != tt.tops || len(g.Order) != tt.all {
				t.Fatalf("chain %d, leaves %d, tops %d, all %d; want %d, %d, %d, %d",
					len(g.Chain), len(g.Leaves), len(g.Tops), len(g.Order), tt.chain, tt.leaves, tt.tops, tt.all)
			}
			checkInputs(t, g, tt.o)
		})
	}
}

// checkInputs checks every derivation's inputs against the shape.
func checkInputs(t *testing.T, g *Graph, o Options) {
	t.Helper()
	for i, p := range g.Order {
		for _, in := range g.Inputs[p] {
			if j := slices.Index(g.Order, in); j < 0 || j >= i {
				t.Errorf("%s: input %s comes at %d, not before %d", p.Name(), in.Name(), j, i)
			}
		}
	}
	var top []store.Path
	if len(g.Chain) > 0 {
		top = g.Chain[len(g.Chain)-1:]
	}
	for _, l := range g.Leaves {
		if !slices.Equal(g.Inputs[l], top) {
			t.Errorf("%s: inputs %v, want %v", l.Name(), g.Inputs[l], top)
		}
	}
	for _, p := range g.Tops {
		if len(g.Inputs[p]) != o.PerTop {
			t.Errorf("%s: %d inputs, want %d", p.Name(), len(g.Inputs[p]), o.PerTop)
		}
	}
	if o.Fail && !slices.Contains(g.Inputs[g.FailedDependent], g.Failing) {
		t.Errorf("needs-broken does not depend on broken")
	}
}

// TestWrittenFilesAreExact writes a graph in both store layouts and checks
// every file: its name is its computed .drv store path, it parses and prints
// back byte for byte, and its output paths and variables check out against
// its inputs read back from the same directory.
func TestWrittenFilesAreExact(t *testing.T) {
	for _, dir := range []store.Dir{store.GuixDir, store.NixDir} {
		t.Run(string(dir), func(t *testing.T) {
			g, err := New(Options{StoreDir: dir, System: testSystem, Tag: "t", Chain: 3, Leaves: 5, Tops: 2, PerTop: 2, Sleep: 1, SlowEvery: 2, SlowSleep: 3, Fail: true})
			if err != nil {
				t.Fatal(err)
			}
			root := t.TempDir()
			if err := g.Write(root); err != nil {
				t.Fatal(err)
			}
			entries, _ := os.ReadDir(root)
			if len(entries) != len(g.Order) {
				t.Errorf("%d files written, want %d", len(entries), len(g.Order))
			}
			h := derivation.NewHasher(dir, derivation.DirLoader{Root: root, Dir: dir})
			for _, p := range g.Order {
				checkFile(t, h, root, p, g.Inputs[p])
			}
		})
	}
}

func checkFile(t *testing.T, h *derivation.Hasher, root string, p store.Path, inputs []store.Path) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, p.Base()))
	if err != nil {
		t.Fatal(err)
	}
	d, err := derivation.Parse(data, p.Dir())
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	if !bytes.Equal(d.Bytes(), data) {
		t.Errorf("%s does not print back byte for byte", p)
	}
	name, err := derivation.NameFromPath(p)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := derivation.StorePath(p.Dir(), d, name); err != nil || got != p {
		t.Errorf("file %s has store path %s (%v)", p.Base(), got, err)
	}
	if err := h.Check(d, name); err != nil {
		t.Errorf("%s: %v", p, err)
	}
	if len(d.InputDrvs) != len(inputs) {
		t.Errorf("%s: %d input derivations, want %d", p, len(d.InputDrvs), len(inputs))
	}
}

// TestScripts checks the parts of the builder scripts that make the graph
// useful: sleeps where asked, a failure only in "broken", every input's
// output named in the environment the script writes into the output.
func TestScripts(t *testing.T) {
	g, err := New(Options{System: testSystem, Chain: 1, Leaves: 4, Tops: 1, PerTop: 2, Sleep: 1, SlowEvery: 2, SlowSleep: 7, Fail: true})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		p            store.Path
		sleep        string
		fails        bool
		inputOutputs []store.Path
	}{
		{g.Chain[0], "sleep 1\n", false, nil},
		{g.Leaves[0], "sleep 1\n", false, []store.Path{g.Output(g.Chain[0])}},
		{g.Leaves[1], "sleep 7\n", false, []store.Path{g.Output(g.Chain[0])}},
		{g.Tops[0], "sleep 1\n", false, []store.Path{g.Output(g.Leaves[0]), g.Output(g.Leaves[1])}},
		{g.Failing, "sleep 1\n", true, []store.Path{g.Output(g.Chain[0])}},
		{g.FailedDependent, "sleep 1\n", false, []store.Path{g.Output(g.Failing), g.Output(g.Leaves[0])}},
	}
	for _, tt := range tests {
		t.Run(tt.p.Name(), func(t *testing.T) {
			d := g.Drvs[tt.p]
			script := d.Args[1]
			if !strings.Contains(script, tt.sleep) {
				t.Errorf("script lacks %q:\n%s", tt.sleep, script)
			}
			if got := strings.Contains(script, "exit 1"); got != tt.fails {
				t.Errorf("script fails: %v, want %v", got, tt.fails)
			}
			var want []string
			for _, o := range tt.inputOutputs {
				want = append(want, string(o))
			}
			if got := d.Env["inputs"]; got != strings.Join(want, " ") {
				t.Errorf("inputs = %q, want %q", got, strings.Join(want, " "))
			}
		})
	}
}

// TestTagSeparatesGraphs checks that the same shape with another tag shares
// no derivation, and with the same tag is the same graph.
func TestTagSeparatesGraphs(t *testing.T) {
	mk := func(tag string) *Graph {
		g, err := New(Options{System: testSystem, Tag: tag, Chain: 2, Leaves: 2})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	a, b, c := mk("a"), mk("a"), mk("b")
	if !slices.Equal(a.Order, b.Order) {
		t.Error("same options made different graphs")
	}
	for _, p := range a.Order {
		if slices.Contains(c.Order, p) {
			t.Errorf("%s is in graphs of both tags", p)
		}
	}
}

// TestOptionErrors checks that options that make no sensible graph are
// refused with ErrOptions.
func TestOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		o    Options
	}{
		{"no system", Options{Leaves: 1}},
		{"quote in system", Options{System: `x"`, Leaves: 1}},
		{"empty", Options{System: testSystem}},
		{"negative", Options{System: testSystem, Leaves: -1}},
		{"tops without leaves", Options{System: testSystem, Tops: 1}},
		{"too many per top", Options{System: testSystem, Leaves: 2, Tops: 1, PerTop: 3}},
		{"negative sleep", Options{System: testSystem, Leaves: 1, Sleep: -1}},
		{"too large", Options{System: testSystem, Leaves: MaxDerivations + 1}},
		{"bad store dir", Options{System: testSystem, Leaves: 1, StoreDir: "relative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.o); !errors.Is(err, ErrOptions) {
				t.Errorf("New: %v, want ErrOptions", err)
			}
		})
	}
}

// TestFill runs a builder script with Fill and BuildOnly under the
// machine's /bin/sh and checks the size of its filler, and that its output
// names its input but not the input's path.
func TestFill(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	if err := os.Mkdir(in, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"name", "seen"} {
		if err := os.WriteFile(filepath.Join(in, f), []byte("the-input\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("/bin/sh", "-c", script(0, false, true, 1000))
	cmd.Env = []string{"out=" + out, "name=x", "inputs=" + in, "PATH=/bin:/usr/bin"}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("builder: %v\n%s", err, b)
	}
	fi, err := os.Stat(filepath.Join(out, "fill"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != 16*64 {
		t.Errorf("fill is %d bytes, want 16 lines of 64", fi.Size())
	}
	if b, err := os.ReadFile(filepath.Join(out, "inputs")); err != nil || string(b) != "the-input\n" {
		t.Errorf("inputs file %q, %v; want the input's name only", b, err)
	}
}
