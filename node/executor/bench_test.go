package executor

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// BenchmarkBuildTrivial measures a trivial build with the builtin executor
// (namespace setup, builder run, registration) and reports its speed relative
// to Nix 2.8 building the same derivation in its own sandbox in the same run
// (x-faster-than-nix > 1: faster than Nix). Instantiation is not timed.
func BenchmarkBuildTrivial(b *testing.B) {
	e := newEnv(b)
	var builtin, nix time.Duration
	i := 0
	for b.Loop() {
		i++
		b.StopTimer()
		drv := e.instantiateArgs(b, "bench.nix", "--argstr", "n", strconv.Itoa(i))
		d := e.load(b, drv)
		b.StartTimer()
		start := time.Now()
		if _, err := e.exec.Build(context.Background(), Request{DrvPath: drv, Drv: d}); err != nil {
			b.Fatal(err)
		}
		builtin += time.Since(start)
		b.StopTimer()
		start = time.Now()
		e.nix.Run(b, "nix-store", "--realise", string(drv))
		nix += time.Since(start)
		b.StartTimer()
	}
	b.ReportMetric(float64(nix)/float64(builtin), "x-faster-than-nix")
}
