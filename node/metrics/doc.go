// Package metrics is a node's Prometheus registry: what /metrics of the
// status server exports, in the Prometheus text format.
//
// Two kinds of figures:
//   - read at each scrape from the node's state through Sources: the
//     replicated queue (tbfg_builds, the same on every node), Raft
//     (tbfg_raft_leader, tbfg_raft_commit_index, tbfg_raft_applied_index),
//     the mesh (tbfg_mesh_members; tbfg_mesh_stream_bytes_total{kind},
//     what its streams carried over direct and relayed connections;
//     tbfg_relay_forwarded_bytes_total) and the replicator
//     (tbfg_replication_backlog);
//   - counted as they happen, by the node's components through the methods
//     of Metrics: this node's builds (tbfg_build_duration_seconds), its
//     substitute server (tbfg_substitute_requests_total,
//     tbfg_substitute_bytes_total) and its NAR cache
//     (tbfg_nar_cache_hits_total, tbfg_nar_cache_misses_total).
//
// Go runtime and process metrics (go_*, process_*) come with them. Label
// values are bounded sets, so a client cannot grow the registry.
//
// It knows nothing of HTTP routing (the status server mounts Handler) nor of
// where the figures come from: the node wires the Sources and calls the
// methods.
package metrics
