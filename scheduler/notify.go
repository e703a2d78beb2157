package scheduler

import "sync"

// Subscription delivers wake-ups: C receives a value when something the
// subscriber cares about changed. Wake-ups coalesce (C holds at most one) and
// are never blocking for the FSM, so a subscriber re-reads the state through
// FSM.Read after each one instead of expecting one signal per change.
type Subscription struct {
	// C receives a value after relevant changes.
	C <-chan struct{}

	c     chan struct{}
	close func()
	once  sync.Once
}

// Close stops deliveries. It is idempotent.
func (s *Subscription) Close() { s.once.Do(s.close) }

func (s *Subscription) wake() {
	select {
	case s.c <- struct{}{}:
	default: // one pending wake-up is enough
	}
}

// event is what one applied command changed, resolved to ids and paths.
type event struct {
	nodes []string
	paths []string
}

// event resolves the effects of the last applied command.
func (s *State) event() event {
	var ev event
	for _, n := range s.fx.nodes {
		ev.nodes = append(ev.nodes, s.nodes[n].id)
	}
	for _, p := range s.fx.paths {
		ev.paths = append(ev.paths, s.paths[p].path)
	}
	return ev
}

// notifier keeps the subscriptions of an FSM.
type notifier struct {
	mu     sync.Mutex
	all    map[*Subscription]struct{}
	byNode map[string]map[*Subscription]struct{}
	byPath map[string]map[*Subscription]struct{}
}

func (n *notifier) add(key string, index *map[string]map[*Subscription]struct{}) *Subscription {
	c := make(chan struct{}, 1)
	sub := &Subscription{C: c, c: c}
	n.mu.Lock()
	defer n.mu.Unlock()
	if *index == nil {
		*index = map[string]map[*Subscription]struct{}{}
	}
	if (*index)[key] == nil {
		(*index)[key] = map[*Subscription]struct{}{}
	}
	(*index)[key][sub] = struct{}{}
	sub.close = func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		delete((*index)[key], sub)
		if len((*index)[key]) == 0 {
			delete(*index, key)
		}
	}
	return sub
}

// Changes subscribes to every applied command that changed the state (for the
// allocation loop and status pages).
func (f *FSM) Changes() *Subscription {
	c := make(chan struct{}, 1)
	sub := &Subscription{C: c, c: c}
	n := &f.subs
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.all == nil {
		n.all = map[*Subscription]struct{}{}
	}
	n.all[sub] = struct{}{}
	sub.close = func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		delete(n.all, sub)
	}
	return sub
}

// WatchNode subscribes to changes of the builds allocated to node: new
// allocations, and builds taken away (canceled, re-queued).
func (f *FSM) WatchNode(node string) *Subscription {
	return f.subs.add(node, &f.subs.byNode)
}

// WatchPaths subscribes to any of paths becoming available in the mesh (an
// agent waiting for inputs to appear).
func (f *FSM) WatchPaths(paths []string) *Subscription {
	c := make(chan struct{}, 1)
	sub := &Subscription{C: c, c: c}
	subs := make([]*Subscription, len(paths))
	for i, p := range paths {
		subs[i] = f.subs.add(p, &f.subs.byPath)
		subs[i].c = c // all keys share one channel
	}
	sub.close = func() {
		for _, s := range subs {
			s.Close()
		}
	}
	return sub
}

// publish wakes the subscribers concerned by ev.
func (n *notifier) publish(ev event) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for sub := range n.all {
		sub.wake()
	}
	for _, id := range ev.nodes {
		for sub := range n.byNode[id] {
			sub.wake()
		}
	}
	for _, p := range ev.paths {
		for sub := range n.byPath[p] {
			sub.wake()
		}
	}
}

// publishAll wakes every subscriber (after a restore, anything may have
// changed).
func (n *notifier) publishAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, group := range []map[string]map[*Subscription]struct{}{n.byNode, n.byPath} {
		for _, subs := range group {
			for sub := range subs {
				sub.wake()
			}
		}
	}
	for sub := range n.all {
		sub.wake()
	}
}
