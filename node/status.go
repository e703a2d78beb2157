package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/node/metrics"
	"github.com/tbfg/tbfg-node/node/web"
	"github.com/tbfg/tbfg-node/scheduler"
)

// newMetrics makes the node's Prometheus registry over its replica, Raft,
// the mesh's members and the replicator; New calls it, before any of them
// runs, so each source answers zeros until its part does.
func (n *Node) newMetrics() *metrics.Metrics {
	return metrics.New(metrics.Sources{
		Queue: n.fsm,
		Raft: func() metrics.Raft {
			st := n.mesh.RaftStats()
			return metrics.Raft{Leader: st.Leader, CommitIndex: st.CommitIndex, AppliedIndex: n.fsm.Index()}
		},
		Members: func() map[string]int {
			counts := map[string]int{}
			for _, m := range n.mesh.Members() {
				counts[m.Suffrage]++
			}
			return counts
		},
		ReplicationBacklog: func() int {
			if r := n.replicator.Load(); r != nil {
				return r.Backlog()
			}
			return 0
		},
		Traffic: func() metrics.Traffic {
			b := n.mesh.ConnBytes()
			return metrics.Traffic{Direct: b.Direct, Relayed: b.Relayed, Forwarded: n.mesh.RelayedBytes()}
		},
	})
}

// newStatusServer makes the status server over the node; nil without
// --http-listen.
func (n *Node) newStatusServer() (*web.Server, error) {
	if n.cfg.HTTPListen == "" {
		return nil, nil
	}
	srv, err := web.New(web.Config{Backend: statusBackend{n}, Replica: n.fsm, Metrics: n.metrics.Handler(),
		Logger: n.log.With("component", "web")})
	if err != nil {
		return nil, fmt.Errorf("status server: %w", err)
	}
	return srv, nil
}

// listenHTTP opens the status server's listener on --http-listen, before
// anything else listens, so that a busy port fails the start at once.
func (n *Node) listenHTTP() (net.Listener, error) {
	if n.web == nil {
		return nil, nil
	}
	ln, err := net.Listen("tcp", n.cfg.HTTPListen)
	if err != nil {
		return nil, fmt.Errorf("--http-listen %s: %w (choose another address, or off)", n.cfg.HTTPListen, err)
	}
	n.httpAddr.Store(ln.Addr().String())
	return ln, nil
}

// startStatusServer serves the status server on ln, and tells its pages of
// the mesh's membership and leader changes. Both stop with the loop group;
// they were started before the mesh, so they stop after everything that
// started later, but before the mesh closes (Members and RaftStats read
// it).
func (n *Node) startStatusServer(ln net.Listener) {
	if ln == nil {
		return
	}
	n.loops.Go("status server", nil, func(ctx context.Context) error { return n.web.Serve(ctx, ln) })
	n.loops.Go("status server members", nil, func(ctx context.Context) error {
		for range n.mesh.WatchMembers(ctx) {
			n.web.MembersChanged()
		}
		return nil
	})
	n.log.Info("serving the status page", "url", "http://"+n.HTTPAddr()+"/")
}

// HTTPAddr is the address the status server listens on, "" without one;
// valid once Run has started it.
func (n *Node) HTTPAddr() string {
	s, _ := n.httpAddr.Load().(string)
	return s
}

// statusBackend is the node as the status server's web.Backend.
type statusBackend struct{ n *Node }

var _ web.Backend = statusBackend{}

func (b statusBackend) Status(context.Context) (adminapi.Status, error) { return b.n.Status(), nil }

func (b statusBackend) Nodes(context.Context) ([]adminapi.NodeView, error) {
	views, err := b.n.Nodes()
	if errors.Is(err, adminapi.ErrUnavailable) {
		err = classify(err, web.ErrUnavailable)
	}
	return views, err
}

func (b statusBackend) Raft() web.RaftInfo {
	st := b.n.mesh.RaftStats()
	return web.RaftInfo{Member: st.Member, Leader: st.LeaderID, CommitIndex: st.CommitIndex}
}

func (b statusBackend) Timeline(id uint64, attempt int) (adminapi.Timeline, bool) {
	return b.n.timeline(scheduler.BuildID(id), attempt)
}

func (b statusBackend) OpenLog(ctx context.Context, id uint64, opts web.LogOptions) (io.ReadCloser, int64, error) {
	return b.n.OpenLog(ctx, id, opts)
}
