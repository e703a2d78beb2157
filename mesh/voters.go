package mesh

import (
	"cmp"
	"slices"

	"github.com/hashicorp/raft"
)

// seat is one server of the Raft configuration as the leader sees it when it
// chooses voters.
type seat struct {
	id    raft.ServerID
	voter bool
	// self is the leader itself: never demoted, always directly reachable.
	self bool
	// healthy: the leader heard from it recently (see Mesh.healthy).
	healthy bool
	// eligible: it said it may vote; unknown counts as false.
	eligible bool
	// ineligible: it said it must not vote; unknown counts as false.
	ineligible bool
	// relayed: the leader has no direct connection to it; every one goes
	// through a relay, or there is none (it is heard of by gossip only).
	relayed bool
}

// voterChange is what the reconciler does next about suffrage: promote or
// demote one server, or nothing (both empty).
type voterChange struct {
	promote raft.ServerID
	demote  raft.ServerID
}

// planVoters is the voter rule: it brings the voter count to
// effectiveTarget and prefers members the leader reaches directly (see
// seat.relayed). A healthy, eligible non-voter is promoted when a seat is
// free or a voter is unhealthy (the extra voter is demoted on a later
// tick), and, when it is reached directly, also to replace a voter reached
// only through a relay. Spares reached directly come first; one reached
// only through a relay is promoted only when no direct spare exists, so a
// shortage of directly reachable members never leaves the mesh with fewer
// voters than its size calls for. A demotion picks an unhealthy or
// ineligible voter first, then one reached only through a relay, never the
// leader.
func planVoters(seats []seat) voterChange {
	var voters []seat
	var direct, relayed []raft.ServerID
	unhealthyVoter, relayedVoter, eligible := false, false, 0
	for _, s := range seats {
		switch {
		case s.voter:
			voters = append(voters, s)
			unhealthyVoter = unhealthyVoter || !s.healthy
			relayedVoter = relayedVoter || s.relayed && !s.self
			if !s.ineligible {
				eligible++
			}
		case s.eligible:
			eligible++
			if !s.healthy {
				continue
			}
			if s.relayed {
				relayed = append(relayed, s.id)
			} else {
				direct = append(direct, s.id)
			}
		}
	}
	slices.Sort(direct)
	slices.Sort(relayed)
	target := effectiveTarget(len(seats), eligible)
	spare := append(direct, relayed...)
	switch {
	case len(spare) > 0 && (len(voters) < target || unhealthyVoter && len(voters) == target):
		return voterChange{promote: spare[0]}
	case len(direct) > 0 && relayedVoter && len(voters) == target:
		return voterChange{promote: direct[0]}
	case len(voters) > target:
		return voterChange{demote: demotionCandidate(voters)}
	}
	return voterChange{}
}

// demotionCandidate picks the voter to demote: never the leader itself,
// an unhealthy or ineligible one first, then one reached only through a
// relay, then the first in the configuration's order.
func demotionCandidate(voters []seat) raft.ServerID {
	rank := func(s seat) int {
		switch {
		case !s.healthy || !s.eligible:
			return 0
		case s.relayed:
			return 1
		}
		return 2
	}
	var best *seat
	for i := range voters {
		s := &voters[i]
		if s.self {
			continue
		}
		if best == nil || cmp.Less(rank(*s), rank(*best)) {
			best = s
		}
	}
	if best == nil {
		return ""
	}
	return best.id
}
