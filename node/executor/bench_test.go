package executor

import (
	"context"
	"fmt"
	"strconv"
	"syscall"
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

// BenchmarkSandboxCost measures what the sandbox costs per build: the same
// trivial build in the current sandbox and in the legacy one (builder as
// root in private mount and PID namespaces, see legacy_test.go), alternating
// which goes first. It reports each one's wall time and the CPU time of its
// processes per build, the wall time the current sandbox adds, and the ratio
// of wall times in this project's convention (x-faster-than-legacy: the
// legacy sandbox's time over the current one's, below 1 when the current one
// is slower).
func BenchmarkSandboxCost(b *testing.B) {
	e := newEnv(b)
	defer func() { e.exec.run = e.exec.runSandboxed }()
	modes := []struct {
		name      string
		run       func(context.Context, *job) error
		wall, cpu time.Duration
	}{{name: "s", run: e.exec.runSandboxed}, {name: "l", run: e.exec.runLegacy}}
	i := 0
	for b.Loop() {
		i++
		for k := range modes {
			m := &modes[(i+k)%2]
			b.StopTimer()
			drv := e.instantiateArgs(b, "bench.nix", "--argstr", "n", fmt.Sprintf("%s%d", m.name, i))
			d := e.load(b, drv)
			e.exec.run = m.run
			b.StartTimer()
			cpu, start := childrenCPU(), time.Now()
			if _, err := e.exec.Build(context.Background(), Request{DrvPath: drv, Drv: d}); err != nil {
				b.Fatal(err)
			}
			m.wall += time.Since(start)
			m.cpu += childrenCPU() - cpu
		}
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(i) / float64(time.Millisecond) }
	cur, legacy := modes[0], modes[1]
	b.ReportMetric(ms(cur.wall), "ms/build")
	b.ReportMetric(ms(legacy.wall), "legacy_ms/build")
	b.ReportMetric(ms(cur.wall-legacy.wall), "added_ms/build")
	b.ReportMetric(ms(cur.cpu), "cpu_ms/build")
	b.ReportMetric(ms(legacy.cpu), "legacy_cpu_ms/build")
	b.ReportMetric(float64(legacy.wall)/float64(cur.wall), "x-faster-than-legacy")
}

// childrenCPU is the CPU time used so far by the waited-for children of this
// process and theirs: the sandbox helpers and the builders.
func childrenCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
