package derivation

import (
	"cmp"
	"io"
	"maps"
	"slices"

	"github.com/tbfg/tbfg-node/store"
)

// Bytes returns d in the ATerm format, with outputs, input derivations, their
// output ids, input sources and environment variables in sorted order, as
// Guix and Nix write .drv files.
func (d *Derivation) Bytes() []byte {
	return d.appendATerm(make([]byte, 0, d.sizeHint()), false, inputsOf(d))
}

// WriteTo writes d.Bytes() to w.
func (d *Derivation) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(d.Bytes())
	return int64(n), err
}

// input is one entry of the input derivation list: a .drv path, or its hash
// when hashing modulo outputs, with the output ids used.
type input struct {
	key     string
	outputs []string
}

// inputsOf lists d's input derivations sorted by path.
func inputsOf(d *Derivation) []input {
	list := make([]input, 0, len(d.InputDrvs))
	for p, outs := range d.InputDrvs {
		list = append(list, input{key: string(p), outputs: outs})
	}
	slices.SortFunc(list, func(a, b input) int { return cmp.Compare(a.key, b.key) })
	return list
}

// appendATerm appends the ATerm text of d to b with inputs in place of the
// input derivations. With mask set, output paths and the environment
// variables named after outputs are printed empty, as hashDerivationModulo
// needs.
func (d *Derivation) appendATerm(b []byte, mask bool, inputs []input) []byte {
	b = append(b, "Derive(["...)
	for i, id := range sortedKeys(d.Outputs) {
		o := d.Outputs[id]
		path := o.Path
		if mask {
			path = ""
		}
		b = appendSep(b, i)
		b = append(b, '(')
		b = appendStrings(b, id, string(path), o.HashAlgo, o.Hash)
		b = append(b, ')')
	}
	b = append(b, "],["...)
	for i, in := range inputs {
		b = appendSep(b, i)
		b = append(b, '(')
		b = appendString(b, in.key)
		b = append(b, ",["...)
		b = appendStrings(b, sortedCopy(in.outputs)...)
		b = append(b, "])"...)
	}
	b = append(b, "],["...)
	b = appendStrings(b, sortedPaths(d.InputSrcs)...)
	b = append(b, "],"...)
	b = appendStrings(b, d.System, d.Builder)
	b = append(b, ",["...)
	b = appendStrings(b, d.Args...)
	b = append(b, "],["...)
	for i, k := range sortedKeys(d.Env) {
		v := d.Env[k]
		if _, isOutput := d.Outputs[k]; mask && isOutput {
			v = ""
		}
		b = appendSep(b, i)
		b = append(b, '(')
		b = appendStrings(b, k, v)
		b = append(b, ')')
	}
	return append(b, "])"...)
}

func appendSep(b []byte, i int) []byte {
	if i > 0 {
		return append(b, ',')
	}
	return b
}

// appendStrings appends the quoted strings separated by commas.
func appendStrings(b []byte, list ...string) []byte {
	for i, s := range list {
		b = appendSep(b, i)
		b = appendString(b, s)
	}
	return b
}

// appendString appends s in double quotes with ", \, newline, carriage return
// and tab escaped; every other byte is written as it is.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '"':
			esc = `\"`
		case '\\':
			esc = `\\`
		case '\n':
			esc = `\n`
		case '\r':
			esc = `\r`
		case '\t':
			esc = `\t`
		default:
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, esc...)
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// sizeHint estimates the printed size of d to size the output buffer once.
func (d *Derivation) sizeHint() int {
	n := 64 + len(d.System) + len(d.Builder)
	for id, o := range d.Outputs {
		n += len(id) + len(o.Path) + len(o.HashAlgo) + len(o.Hash) + 12
	}
	for p, outs := range d.InputDrvs {
		n += len(p) + 8
		for _, o := range outs {
			n += len(o) + 3
		}
	}
	for _, p := range d.InputSrcs {
		n += len(p) + 3
	}
	for _, a := range d.Args {
		n += len(a) + 3
	}
	for k, v := range d.Env {
		n += len(k) + len(v) + 8
	}
	return n + n/16
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// sortedCopy returns list sorted, copying it only when it is not sorted yet.
func sortedCopy(list []string) []string {
	if slices.IsSorted(list) {
		return list
	}
	c := slices.Clone(list)
	slices.Sort(c)
	return c
}

func sortedPaths(list []store.Path) []string {
	s := make([]string, len(list))
	for i, p := range list {
		s[i] = string(p)
	}
	return sortedCopy(s)
}
