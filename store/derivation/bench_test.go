package derivation

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/nixbase32"
)

// largeDrv builds a derivation shaped like a big distribution package's: three
// outputs, 60 input derivations, 12 input sources and 40 environment
// variables, some of them long multi-line scripts with quotes and tabs.
// Printed, it is about 50 kB.
func largeDrv() *Derivation {
	path := func(i int, name string) store.Path {
		h := make([]byte, 20)
		h[0], h[1] = byte(i), byte(i>>8)
		return store.Path("/gnu/store/" + nixbase32.Encode(h) + "-" + name)
	}
	d := &Derivation{
		Outputs:   map[string]Output{},
		InputDrvs: map[store.Path][]string{},
		System:    "x86_64-linux",
		Builder:   string(path(1, "guile-3.0.9")) + "/bin/guile",
		Args:      []string{"--no-auto-compile", "-L", string(path(2, "module-import")), "-C", string(path(3, "module-import-compiled")), string(path(4, "big-builder"))},
		Env:       map[string]string{},
	}
	for i, id := range []string{"out", "lib", "debug"} {
		d.Outputs[id] = Output{Path: path(10+i, store.OutputName("big-1.0", id))}
		d.Env[id] = string(d.Outputs[id].Path)
	}
	for i := range 60 {
		d.InputDrvs[path(100+i, fmt.Sprintf("dep-%d.drv", i))] = []string{"out"}
	}
	for i := range 12 {
		d.InputSrcs = append(d.InputSrcs, path(200+i, fmt.Sprintf("src-%d.tar.xz", i)))
	}
	script := strings.Repeat("if [ \"$x\" = 'y' ]; then\n\techo \"\\$out\" > $out/log\nfi\n", 80)
	for i := range 37 {
		v := fmt.Sprintf("value %d with %s", i, path(300+i, "thing"))
		if i%9 == 0 {
			v = script
		}
		d.Env[fmt.Sprintf("VAR_%02d", i)] = v
	}
	return d
}

// BenchmarkParse reports how many large derivations Parse reads per second,
// and the ratio of that rate to decoding the same derivation from JSON with
// encoding/json, measured in the same run (x-faster-than-json-decode).
func BenchmarkParse(b *testing.B) {
	d := largeDrv()
	data := d.Bytes()
	js, err := json.Marshal(d)
	if err != nil {
		b.Fatal(err)
	}
	jsonRate := rate(b, func() error { var v Derivation; return json.Unmarshal(js, &v) })
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := Parse(data, store.GuixDir); err != nil {
			b.Fatal(err)
		}
	}
	perSec := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(perSec, "drv/s")
	b.ReportMetric(perSec/jsonRate, "x-faster-than-json-decode")
}

// BenchmarkOutputPaths reports how many large derivations per second get
// their output paths computed, with input hashes already remembered.
func BenchmarkOutputPaths(b *testing.B) {
	d := largeDrv()
	loader := mapLoader{}
	for p := range d.InputDrvs {
		loader[p] = leaf()
	}
	h := NewHasher(store.GuixDir, loader)
	for b.Loop() {
		if _, err := h.OutputPaths(d, "big-1.0"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "drv/s")
}

// rate measures how many times per second f runs, over at least 200 ms.
func rate(b *testing.B, f func() error) float64 {
	start := time.Now()
	n := 0
	for time.Since(start) < 200*time.Millisecond {
		if err := f(); err != nil {
			b.Fatal(err)
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds()
}
