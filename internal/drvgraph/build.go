package drvgraph

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/derivation"
)

// builder makes the derivations of one graph in dependency order. It is the
// Hasher's Loader: every input it is asked for was made before.
type builder struct {
	o Options
	g *Graph
	h *derivation.Hasher
}

// Load returns a derivation made earlier.
func (b *builder) Load(p store.Path) (*derivation.Derivation, error) {
	d, ok := b.g.Drvs[p]
	if !ok {
		return nil, fmt.Errorf("%s: not in the graph", p)
	}
	return d, nil
}

// build makes the chain, the leaves, the tops and the failing pair.
func (b *builder) build() error {
	var prev []store.Path
	for i := range b.o.Chain {
		p, err := b.add(fmt.Sprintf("toolchain-%d", i), prev, b.o.Sleep, false)
		if err != nil {
			return err
		}
		b.g.Chain = append(b.g.Chain, p)
		prev = []store.Path{p}
	}
	for i := range b.o.Leaves {
		p, err := b.add(fmt.Sprintf("leaf-%d", i), prev, b.leafSleep(i), false)
		if err != nil {
			return err
		}
		b.g.Leaves = append(b.g.Leaves, p)
	}
	for i := range b.o.Tops {
		ins := make([]store.Path, 0, b.o.PerTop)
		for j := range b.o.PerTop {
			ins = append(ins, b.g.Leaves[(i*b.o.PerTop+j)%len(b.g.Leaves)])
		}
		p, err := b.add(fmt.Sprintf("top-%d", i), ins, b.o.Sleep, false)
		if err != nil {
			return err
		}
		b.g.Tops = append(b.g.Tops, p)
	}
	return b.addFailing(prev)
}

// addFailing adds "broken", on the chain, and "needs-broken", on it and the
// first leaf, when asked to.
func (b *builder) addFailing(chain []store.Path) error {
	if !b.o.Fail {
		return nil
	}
	var err error
	if b.g.Failing, err = b.add("broken", chain, b.o.Sleep, true); err != nil {
		return err
	}
	ins := append([]store.Path{b.g.Failing}, b.g.Leaves[:min(1, len(b.g.Leaves))]...)
	b.g.FailedDependent, err = b.add("needs-broken", ins, b.o.Sleep, false)
	return err
}

// leafSleep is the seconds leaf i sleeps.
func (b *builder) leafSleep(i int) int {
	if b.o.SlowEvery > 0 && i%b.o.SlowEvery == b.o.SlowEvery-1 {
		return b.o.SlowSleep
	}
	return b.o.Sleep
}

// add makes the derivation name with inputs, fills in its output path as
// Guix would, and records it under its .drv path.
func (b *builder) add(name string, inputs []store.Path, sleep int, fail bool) (store.Path, error) {
	d := &derivation.Derivation{
		Outputs:   map[string]derivation.Output{"out": {}},
		InputDrvs: map[store.Path][]string{},
		System:    b.o.System,
		Builder:   "/bin/sh",
		Args:      []string{"-c", script(sleep, fail, b.o.BuildOnly, b.o.Fill)},
		Env: map[string]string{
			"name": name, "system": b.o.System, "builder": "/bin/sh", "out": "",
			"PATH": "/bin", "inputs": b.inputOutputs(inputs),
		},
	}
	if b.o.Tag != "" {
		d.Env["tag"] = b.o.Tag
	}
	for _, in := range inputs {
		d.InputDrvs[in] = []string{"out"}
	}
	if err := b.h.Fill(d, name); err != nil {
		return "", fmt.Errorf("derivation %s: %w", name, err)
	}
	p, err := derivation.StorePath(b.o.StoreDir, d, name)
	if err != nil {
		return "", fmt.Errorf("derivation %s: %w", name, err)
	}
	b.g.Drvs[p] = d
	b.g.Inputs[p] = inputs
	b.g.Order = append(b.g.Order, p)
	return p, nil
}

// inputOutputs is the space-separated output paths of inputs.
func (b *builder) inputOutputs(inputs []store.Path) string {
	outs := make([]string, 0, len(inputs))
	for _, in := range inputs {
		outs = append(outs, string(b.g.Output(in)))
	}
	return strings.Join(outs, " ")
}

// script is the builder's shell script. The output is a directory: "name"
// holds the derivation's name, "inputs" the output paths of its inputs (its
// references), and "seen" the names of everything below it, collected
// from the inputs' own files; "fill" is fill bytes of filler, when asked.
// With buildOnly, "inputs" holds only the inputs' names, so the output
// refers to none of them.
func script(sleep int, fail, buildOnly bool, fill int) string {
	var s strings.Builder
	s.WriteString("set -e\n")
	if sleep > 0 {
		s.WriteString("sleep " + strconv.Itoa(sleep) + "\n")
	}
	if fail {
		s.WriteString("echo \"$name: failing on purpose\" >&2\nexit 1\n")
		return s.String()
	}
	s.WriteString(`mkdir "$out"
echo "$name" > "$out/name"
: > "$out/inputs"
echo "$name" > "$out/seen"
for i in $inputs; do
`)
	if buildOnly {
		s.WriteString(`  cat "$i/name" >> "$out/inputs"
`)
	} else {
		s.WriteString(`  echo "$i" >> "$out/inputs"
`)
	}
	s.WriteString(`  cat "$i/seen" >> "$out/seen"
done
`)
	if fill > 0 {
		s.WriteString("i=0\nwhile [ $i -lt " + strconv.Itoa((fill+63)/64) + " ]; do\n" +
			"  echo 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n" +
			"  i=$((i+1))\ndone > \"$out/fill\"\n")
	}
	s.WriteString(`echo "$name: built"
`)
	return s.String()
}
