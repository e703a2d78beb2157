package scheduler

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/tbfg/tbfg-node/internal/raftdb"
)

// The benchmarks print their figures with b.ReportMetric. A ratio against a
// reference measured in the same run is named x-faster-than-REF (REF's time
// over ours: above 1, ours is faster) or x-smaller-than-REF (REF's size over
// ours). Two figures divide by a fixed goal instead, and say so in their name:
// fraction-of-100ms-target and fraction-of-500B-target (above 1: over the
// goal). Run them with `make bench` or
//
//	go test -run '^$' -bench . -benchtime 3x ./scheduler/

var benchSystems = []string{x86, "i686-linux", aarch}

// benchGraph returns a distribution-shaped graph of n derivations split into
// Submit commands of batch derivations, with the sources held by node n0.
func benchGraph(b *testing.B, n, batch int) []Submit {
	drvs := distribution(n, benchSystems, 42)
	cmds, err := SplitSubmit(Submit{Time: t0, Submitter: "bench", Node: "n0", Derivations: drvs,
		Items: sourceItems(drvs)}, batch)
	if err != nil {
		b.Fatal(err)
	}
	return cmds
}

// trivialFSM counts entries and nothing else: the raw Raft reference.
type trivialFSM struct{ n int }

func (f *trivialFSM) Apply(*raft.Log) any                 { f.n++; return nil }
func (f *trivialFSM) Snapshot() (raft.FSMSnapshot, error) { return &fsmSnapshot{}, nil }
func (f *trivialFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

// boltRaft starts a single-node Raft on the mesh's on-disk log store
// (raft-boltdb/v2, opened by internal/raftdb) in a temporary directory.
func boltRaft(b *testing.B, fsm raft.FSM) *raft.Raft {
	dir := b.TempDir()
	store, err := raftdb.Open(filepath.Join(dir, "raft.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	snaps, err := raft.NewFileSnapshotStore(dir, 1, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	addr, tr := raft.NewInmemTransport("")
	conf := raftConfig(b, "bench")
	conf.Logger = hclog.NewNullLogger()
	conf.SnapshotThreshold = 1 << 20 // no snapshot in the middle of the measurement
	if err := raft.BootstrapCluster(conf, store, store, snaps, tr,
		raft.Configuration{Servers: []raft.Server{{ID: conf.LocalID, Address: addr}}}); err != nil {
		b.Fatal(err)
	}
	r, err := raft.NewRaft(conf, fsm, store, store, snaps, tr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Shutdown().Error(); _ = store.Close() })
	waitFor(b, "leadership", func() bool { return r.State() == raft.Leader })
	return r
}

// applyAll commits entries one after the other, as a submitting client does,
// and returns the elapsed time.
func applyAll(b *testing.B, r *raft.Raft, entries [][]byte) time.Duration {
	start := time.Now()
	for _, e := range entries {
		f := r.Apply(e, time.Minute)
		if err := f.Error(); err != nil {
			b.Fatal(err)
		}
		if err, ok := f.Response().(error); ok {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

// BenchmarkSubmit50k submits a 50,000-derivation graph through a real
// single-node Raft on the on-disk log store, and the same number of same-size entries
// into a trivial FSM on the same setup.
func BenchmarkSubmit50k(b *testing.B) {
	for _, batch := range []int{1000, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			cmds := benchGraph(b, 50000, batch)
			entries := make([][]byte, len(cmds)+1)
			entries[0] = Encode(joined("n0", 8, benchSystems...))
			for i := range cmds {
				entries[i+1] = Encode(&cmds[i])
			}
			var ours, raw time.Duration
			for range b.N {
				fsm := NewFSM(nil)
				ours += applyAll(b, boltRaft(b, fsm), entries)
				fsm.Read(func(s *State) {
					if q := s.Counts()[BuildQueued]; q != 50000 {
						b.Fatalf("%d builds queued, want 50000", q)
					}
				})
				raw += applyAll(b, boltRaft(b, &trivialFSM{}), entries)
			}
			n := float64(b.N)
			b.ReportMetric(ours.Seconds()*1000/n, "ms-until-queued")
			b.ReportMetric(float64(len(entries))*n/ours.Seconds(), "cmds/s")
			b.ReportMetric(float64(len(entries))*n/raw.Seconds(), "raw-cmds/s")
			b.ReportMetric(raw.Seconds()/ours.Seconds(), "x-faster-than-raw")
			b.ReportMetric(50000*n/ours.Seconds(), "drvs/s")
		})
	}
}

// BenchmarkEncodeSubmit compares the command encoding with encoding/json and
// encoding/gob (one encoder per command, as each log entry stands alone) on a
// 1000-derivation Submit.
func BenchmarkEncodeSubmit(b *testing.B) {
	cmd := benchGraph(b, 50000, 1000)[10]
	var ours, js, gb time.Duration
	var size, jsize, gsize int
	for range b.N {
		start := time.Now()
		var buf bytes.Buffer
		if err := gob.NewEncoder(&buf).Encode(&cmd); err != nil {
			b.Fatal(err)
		}
		gsize = buf.Len()
		var back Submit
		if err := gob.NewDecoder(&buf).Decode(&back); err != nil {
			b.Fatal(err)
		}
		gb += time.Since(start)
		start = time.Now()
		enc := Encode(&cmd)
		if _, err := Decode(enc); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)
		start = time.Now()
		j, _ := json.Marshal(&cmd)
		back = Submit{}
		if err := json.Unmarshal(j, &back); err != nil {
			b.Fatal(err)
		}
		js += time.Since(start)
		size, jsize = len(enc), len(j)
	}
	b.ReportMetric(ours.Seconds()*1e6/float64(b.N), "µs-encode+decode")
	b.ReportMetric(js.Seconds()/ours.Seconds(), "x-faster-than-json")
	b.ReportMetric(float64(size), "bytes")
	b.ReportMetric(float64(jsize)/float64(size), "x-smaller-than-json")
	b.ReportMetric(gb.Seconds()/ours.Seconds(), "x-faster-than-gob")
	b.ReportMetric(float64(gsize)/float64(size), "x-smaller-than-gob")
}

// bigState returns a state with 50 nodes and n queued builds, all ready: the
// distribution core and libraries are held by a node (as if built earlier).
func bigState(b *testing.B, n int) *State {
	s := NewState()
	for i := range 50 {
		mustApply(b, s, joined(fmt.Sprintf("n%d", i), 8, benchSystems[i%3], benchSystems[(i+1)%3]))
	}
	drvs := distribution(n, benchSystems, 42)
	cmds, err := SplitSubmit(Submit{Time: t0, Node: "n0", Derivations: drvs, Items: sourceItems(drvs)}, 5000)
	if err != nil {
		b.Fatal(err)
	}
	for i := range cmds {
		mustApply(b, s, &cmds[i])
	}
	var held []Item
	for _, d := range drvs[:n/100+n/5+1] {
		held = append(held, item(d.Outputs[0].Path))
	}
	mustApply(b, s, &HolderAdded{Time: t0, Node: fmt.Sprintf("n%d", n%50), Items: held})
	return s
}

func nodeViews(n int) []NodeView {
	out := make([]NodeView, n)
	for i := range out {
		out[i] = NodeView{ID: fmt.Sprintf("n%d", i), Cores: 8, Load1: float64(i % 5), LoadLimit: 16,
			FreeDisk: 100 << 30, Speed: float64(1 + i%3)}
	}
	return out
}

// BenchmarkPlan100k runs one allocation round over 100,000 queued builds and
// 50 nodes; the reference is the 100 ms target.
func BenchmarkPlan100k(b *testing.B) {
	s := bigState(b, 100000)
	views := nodeViews(50)
	b.ResetTimer()
	var plan []Allocation
	for range b.N {
		plan = s.Plan(views, t0, PlanOptions{MinFreeDisk: 1 << 30})
	}
	b.StopTimer()
	if len(plan) != 400 {
		b.Fatalf("plan has %d allocations, want 400", len(plan))
	}
	if _, err := s.Apply(Encode(&Allocate{Time: t0, Allocations: plan})); err != nil {
		b.Fatalf("plan rejected: %v", err)
	}
	per := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(per*1000, "ms/round")
	b.ReportMetric(per/0.100, "fraction-of-100ms-target")
	b.ReportMetric(float64(len(plan)), "allocations")
}

// derivationBytes counts the strings a state must keep for builds: .drv
// paths, output paths and names, input sources.
func derivationBytes(drvs []Derivation) int {
	n := 0
	seenSrc := map[string]bool{}
	for _, d := range drvs {
		n += len(d.Path)
		for _, o := range d.Outputs {
			n += len(o.Path)
		}
		for _, src := range d.Sources {
			if !seenSrc[src] {
				seenSrc[src] = true
				n += len(src)
			}
		}
	}
	return n
}

// BenchmarkState100k measures the memory of the state at 100,000 builds and
// the size and time of its snapshot and restore.
func BenchmarkState100k(b *testing.B) {
	const n = 100000
	drvs := distribution(n, benchSystems, 42)
	cmds, err := SplitSubmit(Submit{Time: t0, Node: "n0", Derivations: drvs}, 5000)
	if err != nil {
		b.Fatal(err)
	}
	var heap, snapBytes float64
	var snapTime, restoreTime time.Duration
	for range b.N {
		before := heapInUse()
		s := NewState()
		mustApply(b, s, joined("n0", 8, benchSystems...))
		for i := range cmds {
			mustApply(b, s, &cmds[i])
		}
		heap += float64(heapInUse() - before)
		start := time.Now()
		data, err := s.MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		snapTime += time.Since(start)
		start = time.Now()
		if _, err := UnmarshalState(data); err != nil {
			b.Fatal(err)
		}
		restoreTime += time.Since(start)
		snapBytes += float64(len(data))
		runtime.KeepAlive(s)
	}
	nb := float64(b.N)
	perBuild := heap / nb / n
	drvData := float64(derivationBytes(drvs)) / n
	b.ReportMetric(perBuild, "heap-bytes/build")
	b.ReportMetric(drvData, "drv-data-bytes/build")
	b.ReportMetric(perBuild-drvData, "overhead-bytes/build")
	b.ReportMetric((perBuild-drvData)/500, "fraction-of-500B-target")
	b.ReportMetric(snapBytes/nb/(1<<20), "snapshot-MiB")
	b.ReportMetric(snapTime.Seconds()*1000/nb, "snapshot-ms")
	b.ReportMetric(restoreTime.Seconds()*1000/nb, "restore-ms")
}

// heapInUse returns the live heap after a full collection.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// BenchmarkCompacted100k measures the memory a finished build costs before
// and after compaction, beyond the items of its outputs (which compaction
// keeps: their paths, holders and narinfo). The reference is the same
// 100,000 finished builds before compaction, in the same run; the goal is
// 100 bytes per compacted build.
func BenchmarkCompacted100k(b *testing.B) {
	const n = 100000
	drvs := distribution(n, benchSystems, 42)
	cmds, err := SplitSubmit(Submit{Time: t0, Node: "n0", Derivations: drvs}, 5000)
	if err != nil {
		b.Fatal(err)
	}
	var outs []Item
	for _, d := range drvs {
		for _, o := range d.Outputs {
			outs = append(outs, item(o.Path))
		}
	}
	var today, compacted float64
	for range b.N {
		s := NewState()
		mustApply(b, s, joined("n0", 8, benchSystems...))
		mustApply(b, s, &HolderAdded{Time: t0, Node: "n0", Items: outs})
		items := heapInUse()
		for i := range cmds {
			mustApply(b, s, &cmds[i]) // every output is held: all available, finished
		}
		full := heapInUse()
		for {
			resp := mustApply(b, s, &Compact{Time: t0.Add(40 * 24 * time.Hour), Before: t0.Add(time.Hour), Max: CompactBatch})
			if k, _ := DecodeCompactResponse(resp); k == 0 {
				break
			}
		}
		if s.NumCompacted() != n {
			b.Fatalf("%d builds compacted, want %d", s.NumCompacted(), n)
		}
		after := heapInUse()
		runtime.KeepAlive(s)
		today += float64(full - items)
		compacted += float64(after - items)
	}
	perToday, perCompacted := today/float64(b.N)/n, compacted/float64(b.N)/n
	b.ReportMetric(perToday, "bytes/finished-build")
	b.ReportMetric(perCompacted, "bytes/compacted-build")
	b.ReportMetric(perToday/perCompacted, "x-smaller-than-uncompacted")
	b.ReportMetric(perCompacted/100, "fraction-of-100B-target")
}
