package mesh

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// statusTopic is the pubsub topic of node status messages.
const statusTopic = "/tbfg/status/1"

// maxStatusSize bounds one gossiped status message.
const maxStatusSize = 16 << 10

// Bounds checked on every gossiped status.
const (
	maxListLen = 64
	maxStrLen  = 512
)

// envelope is one gossiped message: the node's status plus what the mesh
// needs of it (addresses, voter eligibility) and a timestamp for freshness.
type envelope struct {
	ID     string     `json:"id"`
	Time   int64      `json:"time"` // unix nanoseconds at the sender
	Addrs  []string   `json:"addrs"`
	Voter  bool       `json:"voter"`
	Status NodeStatus `json:"status"`
}

// decodeEnvelope parses and checks a gossiped message from author.
func decodeEnvelope(data []byte, author string) (*envelope, error) {
	if len(data) > maxStatusSize {
		return nil, fmt.Errorf("status message of %d bytes exceeds %d", len(data), maxStatusSize)
	}
	var e envelope
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("decode status message: %w", err)
	}
	if e.ID != author {
		return nil, fmt.Errorf("status message names %q but is signed by %q", e.ID, author)
	}
	if len(e.Addrs) > maxAddrs {
		return nil, fmt.Errorf("status message: %d addresses, at most %d", len(e.Addrs), maxAddrs)
	}
	if err := e.Status.check(); err != nil {
		return nil, fmt.Errorf("status message: %w", err)
	}
	return &e, nil
}

// check rejects values no honest node sends.
func (s *NodeStatus) check() error {
	for name, list := range map[string][]string{"systems": s.Systems, "features": s.Features} {
		if len(list) > maxListLen {
			return fmt.Errorf("%s: %d entries, at most %d", name, len(list), maxListLen)
		}
		for _, v := range list {
			if v == "" || len(v) > maxStrLen {
				return fmt.Errorf("%s: entry of %d bytes", name, len(v))
			}
		}
	}
	for name, v := range map[string]string{"version": s.Version, "substitute_url": s.SubstituteURL, "signing_key": s.SigningKey} {
		if len(v) > maxStrLen {
			return fmt.Errorf("%s: %d bytes, at most %d", name, len(v), maxStrLen)
		}
	}
	switch {
	case s.MaxBuilds < 0 || s.MaxBuilds > 1<<16:
		return fmt.Errorf("max_builds %d out of range", s.MaxBuilds)
	case s.RunningBuilds < 0 || s.RunningBuilds > 1<<16:
		return fmt.Errorf("running_builds %d out of range", s.RunningBuilds)
	case s.Cores < 0 || s.Cores > 1<<16:
		return fmt.Errorf("cores %d out of range", s.Cores)
	case !finite(s.Load1) || s.Load1 < 0 || s.Load1 > 1e6:
		return fmt.Errorf("load1 %v out of range", s.Load1)
	case !finite(s.MaxLoad) || s.MaxLoad < 0 || s.MaxLoad > 1e6:
		return fmt.Errorf("max_load %v out of range", s.MaxLoad)
	case s.Format < 0 || s.Format > 255 || s.MinFormat < 0 || s.MinFormat > s.Format:
		return fmt.Errorf("formats %d to %d out of range", s.MinFormat, s.Format)
	case !finite(s.Speed) || s.Speed < 0 || s.Speed > 1e6:
		return fmt.Errorf("speed %v out of range", s.Speed)
	}
	return nil
}

// viewEntry is the last status heard from one node.
type viewEntry struct {
	status NodeStatus
	seen   time.Time // local time it was received
	voter  bool
}

// view is the gossip view: the latest status of every node, with last-seen
// times.
type view struct {
	mu      sync.Mutex
	entries map[string]viewEntry
}

func (v *view) put(id string, e viewEntry) {
	v.mu.Lock()
	v.entries[id] = e
	v.mu.Unlock()
}

func (v *view) get(id string) (viewEntry, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.entries[id]
	return e, ok
}

// gossip is the status topic.
type gossip struct {
	ps    *pubsub.PubSub
	topic *pubsub.Topic
	sub   *pubsub.Subscription
	view  *view
	stop  context.CancelFunc
}

// startGossip joins the status topic with GossipSub tuned for a handful of
// nodes on a LAN.
func (m *Mesh) startGossip() (*gossip, error) {
	params := pubsub.DefaultGossipSubParams()
	params.D, params.Dlo, params.Dhi, params.Dscore, params.Dout, params.Dlazy = 4, 2, 6, 2, 1, 4
	params.HeartbeatInterval = 700 * time.Millisecond
	ctx, cancel := context.WithCancel(m.ctx)
	ps, err := pubsub.NewGossipSub(ctx, m.host,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithFloodPublish(true),
		pubsub.WithPeerExchange(false),
		pubsub.WithGossipSubParams(params),
		pubsub.WithMaxMessageSize(maxStatusSize+1024),
		pubsub.WithLogger(m.log.With("component", "pubsub")),
	)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("start gossip: %w", err)
	}
	g := &gossip{ps: ps, view: &view{entries: map[string]viewEntry{}}, stop: cancel}
	if err := ps.RegisterTopicValidator(statusTopic, m.validateStatus); err != nil {
		cancel()
		return nil, fmt.Errorf("gossip validator: %w", err)
	}
	if g.topic, err = ps.Join(statusTopic); err != nil {
		cancel()
		return nil, fmt.Errorf("join gossip topic: %w", err)
	}
	if g.sub, err = g.topic.Subscribe(); err != nil {
		cancel()
		return nil, fmt.Errorf("subscribe to gossip: %w", err)
	}
	m.goLoop(func() { m.receiveLoop(g) })
	return g, nil
}

func (g *gossip) close() {
	g.sub.Cancel()
	g.topic.Close()
	g.stop()
}

// freshness is how far a status timestamp may be from the local clock.
func (m *Mesh) freshness() time.Duration { return max(10*m.cfg.GossipInterval, 30*time.Second) }

// validateStatus is the topic validator: the author is a member (or
// itself), the message decodes, its fields are sane and it is fresh.
func (m *Mesh) validateStatus(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	author := msg.GetFrom()
	if author != m.host.ID() && !m.mem.isMember(author.String()) {
		return pubsub.ValidationIgnore
	}
	e, err := decodeEnvelope(msg.Data, author.String())
	if err != nil {
		m.log.Debug("rejecting status message", "from", author, "error", err)
		return pubsub.ValidationReject
	}
	if age := time.Since(time.Unix(0, e.Time)); age > m.freshness() || age < -m.freshness() {
		return pubsub.ValidationIgnore
	}
	msg.ValidatorData = e
	return pubsub.ValidationAccept
}

// receiveLoop records validated status messages in the view and the
// address book.
func (m *Mesh) receiveLoop(g *gossip) {
	for {
		msg, err := g.sub.Next(m.ctx)
		if err != nil {
			return
		}
		e, ok := msg.ValidatorData.(*envelope)
		if !ok {
			continue
		}
		g.view.put(e.ID, viewEntry{status: e.Status, seen: time.Now(), voter: e.Voter})
		if e.ID != m.ID() {
			m.book.set(e.ID, e.Addrs)
			addToPeerstore(m.host.Peerstore(), e.ID, e.Addrs)
		}
	}
}

// publishLoop publishes this node's status every GossipInterval once it is
// a member.
func (m *Mesh) publishLoop() {
	t := time.NewTicker(m.cfg.GossipInterval)
	defer t.Stop()
	for {
		if m.mem.isJoined() {
			if err := m.publish(); err != nil && !errors.Is(err, context.Canceled) {
				m.log.Debug("publish status", "error", err)
			}
		}
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (m *Mesh) publish() error {
	e := envelope{ID: m.ID(), Time: time.Now().UnixNano(), Addrs: m.Addrs(), Voter: m.cfg.Voter, Status: m.cfg.LocalStatus()}
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return m.gsp.topic.Publish(m.ctx, data)
}
