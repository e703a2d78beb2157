package mesh

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkApply measures committed commands per second through Apply on a
// follower (forwarded to the leader over /tbfg/rpc/1) against raw
// raft.Apply on the leader, on the same 3-node cluster in the same run.
// Each iteration commits applyBatch commands each way, one at a time.
const applyBatch = 200

func BenchmarkApply(b *testing.B) {
	c := newCluster(b, 3, nil)
	waitFor(b, 20*time.Second, "3 voters", func() error { return c.agreed(3, 3) })
	ld, f := c.leader(), c.follower()
	if ld == nil || f == nil {
		b.Fatal("no leader or follower")
	}
	ctx := context.Background()
	cmd := []byte("benchmark-command")
	b.ResetTimer()
	start := time.Now()
	for range b.N * applyBatch {
		if _, err := f.Apply(ctx, cmd); err != nil {
			b.Fatal(err)
		}
	}
	forwarded := time.Since(start)
	start = time.Now()
	for range b.N * applyBatch {
		if err := ld.raftNode().r.Apply(cmd, 10*time.Second).Error(); err != nil {
			b.Fatal(err)
		}
	}
	raw := time.Since(start)
	b.StopTimer()
	fps := float64(b.N*applyBatch) / forwarded.Seconds()
	rps := float64(b.N*applyBatch) / raw.Seconds()
	b.ReportMetric(fps, "forwarded_cmds/s")
	b.ReportMetric(rps, "raw_cmds/s")
	b.ReportMetric(fps/rps, "forwarded/raw")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkFailover kills (closes) the leader of a 3-node cluster
// repeatedly, measuring the time until every survivor agrees on a new
// leader; the killed node is restarted between rounds.
func BenchmarkFailover(b *testing.B) {
	c := newCluster(b, 3, nil)
	waitFor(b, 20*time.Second, "3 voters", func() error { return c.agreed(3, 3) })
	var times []time.Duration
	b.ResetTimer()
	for range b.N {
		for range 3 {
			times = append(times, failoverOnce(b, c))
		}
	}
	b.StopTimer()
	slices.Sort(times)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(times[0]), "min_ms")
	b.ReportMetric(ms(times[len(times)/2]), "median_ms")
	b.ReportMetric(ms(times[len(times)-1]), "max_ms")
	b.ReportMetric(0, "ns/op")
}

func failoverOnce(b *testing.B, c *cluster) time.Duration {
	old := c.leader()
	if old == nil {
		b.Fatal("no leader")
	}
	idx := slices.Index(c.nodes, old)
	start := time.Now()
	old.Close()
	waitFor(b, 10*time.Second, "new leader", func() error {
		var l string
		for _, n := range c.live() {
			nl := n.Leader()
			if nl == "" || nl == old.ID() || l != "" && nl != l {
				return fmt.Errorf("leader %q", nl)
			}
			l = nl
		}
		return nil
	})
	d := time.Since(start)
	c.nodes[idx] = old.restart(b)
	waitFor(b, 20*time.Second, "3 voters again", func() error { return c.agreed(3, 3) })
	return d
}

// BenchmarkApplyConcurrent measures committed commands per second through
// raw raft.Apply on the leader of a 3-node cluster from applyWriters
// goroutines at once, with raft.Config.BatchApplyCh on and off (a cluster
// each, in the same run), and reports their ratio, x-faster-than-unbatched.
// The nodes keep BatchApplyCh off; DESIGN.md says why.
//
//	go test -run '^$' -bench ApplyConcurrent ./mesh/
const applyWriters = 16

func BenchmarkApplyConcurrent(b *testing.B) {
	rate := func(batch bool) float64 {
		c := newCluster(b, 3, func(cfg *Config) { cfg.batchApplyCh = batch })
		waitFor(b, 20*time.Second, "3 voters", func() error { return c.agreed(3, 3) })
		ld := c.leader()
		if ld == nil {
			b.Fatal("no leader")
		}
		r := ld.raftNode().r
		start := time.Now()
		var wg sync.WaitGroup
		for range applyWriters {
			wg.Go(func() {
				for range b.N * applyBatch / applyWriters {
					if err := r.Apply([]byte("benchmark-command"), 10*time.Second).Error(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		rate := float64(b.N*applyBatch/applyWriters*applyWriters) / time.Since(start).Seconds()
		for _, n := range c.live() {
			n.Close()
		}
		return rate
	}
	b.ResetTimer()
	// Each side runs twice, in the order u b b u, so that a change in the
	// machine's load weighs on both alike.
	unbatched, batched := rate(false), rate(true)
	batched = (batched + rate(true)) / 2
	unbatched = (unbatched + rate(false)) / 2
	b.StopTimer()
	b.ReportMetric(batched, "batched_cmds/s")
	b.ReportMetric(unbatched, "unbatched_cmds/s")
	b.ReportMetric(batched/unbatched, "x-faster-than-unbatched")
	b.ReportMetric(0, "ns/op")
}
