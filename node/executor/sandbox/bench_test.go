package sandbox

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/citest"
)

// BenchmarkRun measures one trivial build through the whole sandbox (ids,
// cgroup, helper, mounts, builder, reaping, reclaiming the output), without
// anything of the executor around it. It reports the wall time per build
// (and the CPU time of the helper and the builder, which the machine's load
// changes less) and its ratio to starting the same builder without a sandbox, measured in
// the same run (x-faster-than-bare: below 1, the sandbox's cost shows).
func BenchmarkRun(b *testing.B) {
	citest.Root(b, "builds as other users")
	s, err := New(Config{IDs: testIDs, Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	var sandboxed, bare, cpu time.Duration
	i := 0
	for b.Loop() {
		i++
		b.StopTimer()
		bd := newBuild(b, filepath.Join(dir, fmt.Sprint(i)), 0, 0, ": > $out")
		b.StartTimer()
		cpu0, start := childrenCPU(), time.Now()
		if err := s.Run(context.Background(), bd.spec, Limits{}, nil); err != nil {
			b.Fatal(err)
		}
		sandboxed += time.Since(start)
		cpu += childrenCPU() - cpu0
		b.StopTimer()
		start = time.Now()
		if err := exec.Command(busybox, "sh", "-c", ": > /dev/null").Run(); err != nil {
			b.Fatal(err)
		}
		bare += time.Since(start)
		b.StartTimer()
	}
	b.ReportMetric(float64(sandboxed)/float64(i)/1e6, "ms/build")
	b.ReportMetric(float64(cpu)/float64(i)/1e6, "cpu_ms/build")
	b.ReportMetric(float64(bare)/float64(i)/1e6, "bare_ms/build")
	b.ReportMetric(float64(bare)/float64(sandboxed), "x-faster-than-bare")
}

// childrenCPU is the CPU time used so far by the waited-for children of this
// process and theirs: the helpers and the builders.
func childrenCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
