package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tbfg/tbfg-node/scheduler"
)

// queueCollector exports tbfg_builds from the replica's counters: a scrape
// costs systems × states, not builds. Every state of every system that ever
// had a build is exported, zeros included, so a series drops to 0 instead
// of vanishing.
type queueCollector struct{ queue Queue }

var buildsDesc = prometheus.NewDesc("tbfg_builds",
	"Builds in the replicated queue by state and system; the same on every node.", []string{"state", "system"}, nil)

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- buildsDesc }

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	type key struct {
		system string
		state  scheduler.BuildState
	}
	counts := map[key]int{}
	var systems []string
	c.queue.Read(func(s *scheduler.State) {
		systems = s.Systems()
		for _, qc := range s.QueueCounts() {
			counts[key{qc.System, qc.State}] = qc.Builds
		}
	})
	for _, sys := range systems {
		for st := scheduler.BuildQueued; st.String() != "unknown"; st++ {
			ch <- prometheus.MustNewConstMetric(buildsDesc, prometheus.GaugeValue, float64(counts[key{sys, st}]), st.String(), sys)
		}
	}
}

// raftCollector exports this node's Raft figures.
type raftCollector struct{ raft func() Raft }

var (
	leaderDesc  = prometheus.NewDesc("tbfg_raft_leader", "1 while this node is the Raft leader, else 0.", nil, nil)
	commitDesc  = prometheus.NewDesc("tbfg_raft_commit_index", "Highest Raft log index this node knows is committed.", nil, nil)
	appliedDesc = prometheus.NewDesc("tbfg_raft_applied_index",
		"Highest Raft log index applied to this node's replica of the queue.", nil, nil)
)

func (c *raftCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- leaderDesc
	ch <- commitDesc
	ch <- appliedDesc
}

func (c *raftCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.raft()
	leader := 0.0
	if r.Leader {
		leader = 1
	}
	ch <- prometheus.MustNewConstMetric(leaderDesc, prometheus.GaugeValue, leader)
	// Indices only grow, but they restart with a new Raft history: gauges.
	ch <- prometheus.MustNewConstMetric(commitDesc, prometheus.GaugeValue, float64(r.CommitIndex))
	ch <- prometheus.MustNewConstMetric(appliedDesc, prometheus.GaugeValue, float64(r.AppliedIndex))
}

// membersCollector exports the mesh's members by suffrage.
type membersCollector struct{ members func() map[string]int }

var membersDesc = prometheus.NewDesc("tbfg_mesh_members", "Members of the mesh's Raft configuration by suffrage.",
	[]string{"suffrage"}, nil)

func (c *membersCollector) Describe(ch chan<- *prometheus.Desc) { ch <- membersDesc }

func (c *membersCollector) Collect(ch chan<- prometheus.Metric) {
	counts := c.members()
	for _, s := range []string{"voter", "nonvoter"} {
		ch <- prometheus.MustNewConstMetric(membersDesc, prometheus.GaugeValue, float64(counts[s]), s)
	}
}
