package mesh

import (
	"testing"

	"github.com/hashicorp/raft"
)

// seatsOf builds seats from a compact description: for each server, its
// ID's first letter is its name and the rest its flags: V voter, L leader
// (self), D down (unhealthy), R reached only through a relay, N may not
// vote. Every server is eligible unless N.
func seatsOf(desc ...string) []seat {
	var out []seat
	for _, d := range desc {
		s := seat{id: raft.ServerID(d[:1]), healthy: true, eligible: true}
		for _, f := range d[1:] {
			switch f {
			case 'V':
				s.voter = true
			case 'L':
				s.self, s.voter = true, true
			case 'D':
				s.healthy = false
			case 'R':
				s.relayed = true
			case 'N':
				s.eligible, s.ineligible = false, true
			}
		}
		out = append(out, s)
	}
	return out
}

func TestPlanVoters(t *testing.T) {
	tests := []struct {
		name  string
		seats []seat
		want  voterChange
	}{
		{"direct spare fills a free seat before a relayed one",
			seatsOf("aL", "bR", "c"), voterChange{promote: "c"}},
		{"relayed member is not promoted while a direct one can be",
			seatsOf("aL", "bV", "cV", "dR"), voterChange{}},
		{"relayed voter is replaced by a direct spare",
			seatsOf("aL", "bV", "cVR", "d"), voterChange{promote: "d"}},
		{"the extra voter demoted is the relayed one",
			seatsOf("aL", "bV", "cVR", "dV"), voterChange{demote: "c"}},
		{"an unhealthy voter goes before a relayed one",
			seatsOf("aL", "bVD", "cVR", "dV"), voterChange{demote: "b"}},
		{"shortage of direct members: a relayed member fills the seat",
			seatsOf("aL", "bV", "cR"), voterChange{promote: "c"}},
		{"shortage: a relayed voter keeps its seat",
			seatsOf("aL", "bV", "cVR"), voterChange{}},
		{"an unhealthy voter is replaced even by a relayed spare",
			seatsOf("aL", "bV", "cVD", "dR"), voterChange{promote: "d"}},
		{"a relayed voter is not replaced by a relayed spare",
			seatsOf("aL", "bV", "cVR", "dR"), voterChange{}},
		{"an unhealthy spare is not promoted",
			seatsOf("aL", "bV", "cVR", "dD"), voterChange{}},
		{"a member that may not vote is never promoted",
			seatsOf("aL", "bV", "cVR", "dN"), voterChange{}},
		{"the leader is never demoted, even when others are relayed",
			seatsOf("aL", "bVR"), voterChange{demote: "b"}},
		{"a relayed leader counts as reachable",
			seatsOf("aLR", "b", "c"), voterChange{promote: "b"}},
		{"five servers, three direct: relayed members fill the last seats",
			seatsOf("aL", "bV", "cV", "dR", "eR"), voterChange{promote: "d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := planVoters(tt.seats); got != tt.want {
				t.Fatalf("planVoters(%+v) = %+v, want %+v", tt.seats, got, tt.want)
			}
		})
	}
}

// TestPlanVotersSettles runs the rule until it asks for nothing, applying
// each change, and checks that the relayed voter ends a non-voter when
// enough members are reached directly, and that the rule never undoes
// its own change.
func TestPlanVotersSettles(t *testing.T) {
	seats := seatsOf("aL", "bVR", "c", "d")
	seen := map[voterChange]bool{}
	for range 10 {
		ch := planVoters(seats)
		if ch == (voterChange{}) {
			break
		}
		if seen[ch] {
			t.Fatalf("change %+v asked for twice: the rule oscillates", ch)
		}
		seen[ch] = true
		for i := range seats {
			switch seats[i].id {
			case ch.promote:
				seats[i].voter = true
			case ch.demote:
				seats[i].voter = false
			}
		}
	}
	voters := map[raft.ServerID]bool{}
	for _, s := range seats {
		voters[s.id] = s.voter
	}
	if voters["b"] || !voters["a"] || !voters["c"] || !voters["d"] {
		t.Fatalf("voters %v: want a, c, d voting and the relayed b not", voters)
	}
}
