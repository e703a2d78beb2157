package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/citest"
	"github.com/tbfg/tbfg-node/internal/drvgraph"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/derivation"
	"github.com/tbfg/tbfg-node/store/nar"
)

// drvSpec is one derivation of a hand-made graph.
type drvSpec struct {
	name    string
	inputs  []string // names of earlier specs
	feature string   // its requiredSystemFeatures: only nodes with that --feature build it
	script  string   // the body of its busybox sh script; "" builds a directory naming its inputs
}

// builtScript makes $out a directory holding its name and its inputs'
// output paths (its references) and says so on its log.
const builtScript = `mkdir $out
echo $name > $out/name
for i in $inputs; do echo $i >> $out/inputs; done
echo "$name: built"`

// specGraph makes the derivations of specs for /gnu/store, in order, and
// writes them into a new directory, ready for `tbfg-node submit`. With
// busybox set (the store path that busyboxSource gives, whose directory
// it copies there too), each builder is busybox sh: guix-daemon's builds
// see only their inputs, no /bin/sh. Otherwise it is /bin/sh, which the
// builtin executor maps to busybox. A tag makes the graph new.
func specGraph(t *testing.T, specs []drvSpec, busybox store.Path) (*drvgraph.Graph, string) {
	t.Helper()
	g := &drvgraph.Graph{StoreDir: store.GuixDir, Drvs: map[store.Path]*derivation.Derivation{},
		Inputs: map[store.Path][]store.Path{}}
	h := derivation.NewHasher(store.GuixDir, loaderFunc(func(p store.Path) (*derivation.Derivation, error) {
		if d, ok := g.Drvs[p]; ok {
			return d, nil
		}
		return nil, fmt.Errorf("%s: not in the graph", p)
	}))
	tag := fmt.Sprint(time.Now().UnixNano())
	byName := map[string]store.Path{}
	for _, s := range specs {
		d := specDerivation(s, tag, busybox)
		var outs []string
		for _, in := range s.inputs {
			drv, ok := byName[in]
			if !ok {
				t.Fatalf("spec %s: input %s is not an earlier spec", s.name, in)
			}
			d.InputDrvs[drv] = []string{"out"}
			outs = append(outs, string(g.Output(drv)))
		}
		d.Env["inputs"] = strings.Join(outs, " ")
		if err := h.Fill(d, s.name); err != nil {
			t.Fatal(err)
		}
		p, err := derivation.StorePath(store.GuixDir, d, s.name)
		if err != nil {
			t.Fatal(err)
		}
		byName[s.name], g.Drvs[p] = p, d
		for _, in := range s.inputs {
			g.Inputs[p] = append(g.Inputs[p], byName[in])
		}
		g.Order = append(g.Order, p)
	}
	dir := t.TempDir()
	if err := g.Write(dir); err != nil {
		t.Fatal(err)
	}
	if busybox != "" {
		copyBusybox(t, filepath.Join(dir, busybox.Base()))
	}
	return g, dir
}

// specDerivation is the derivation of s without its inputs.
func specDerivation(s drvSpec, tag string, busybox store.Path) *derivation.Derivation {
	script := s.script
	if script == "" {
		script = builtScript
	}
	builder, args := "/bin/sh", []string{"-c", "set -e\n" + script}
	if busybox != "" {
		builder, args = string(busybox)+"/bin/busybox", append([]string{"sh"}, args...)
	}
	d := &derivation.Derivation{
		Outputs:   map[string]derivation.Output{"out": {}},
		InputDrvs: map[store.Path][]string{},
		System:    nativeSystem(),
		Builder:   builder,
		Args:      args,
		Env: map[string]string{"name": s.name, "system": nativeSystem(), "builder": builder, "out": "",
			"tag": tag},
	}
	if busybox != "" {
		d.InputSrcs = []store.Path{busybox}
	}
	if s.feature != "" {
		d.Env["requiredSystemFeatures"] = s.feature
	}
	return d
}

type loaderFunc func(store.Path) (*derivation.Derivation, error)

func (f loaderFunc) Load(p store.Path) (*derivation.Derivation, error) { return f(p) }

// busyboxSource is the store path of a directory holding bin/busybox, the
// static busybox of Debian's busybox-static: the path Guix's add-to-store
// (recursive, sha256) gives it under the name busybox.
func busyboxSource(t *testing.T) store.Path {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "busybox")
	copyBusybox(t, dir)
	sum, err := nar.HashPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := store.GuixDir.SourcePath("busybox", store.Hash{Algo: store.SHA256, Digest: sum.SHA256[:]}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// copyBusybox writes dir/bin/busybox, a copy of /bin/busybox, with the
// modes a store item has.
func copyBusybox(t *testing.T, dir string) {
	t.Helper()
	data, err := os.ReadFile(citest.Tool(t, "/bin/busybox", "busybox-static"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "busybox"), data, 0o555); err != nil {
		t.Fatal(err)
	}
}
