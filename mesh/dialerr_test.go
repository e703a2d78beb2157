package mesh

import (
	"errors"
	"fmt"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
)

// TestExplainDialErrorThroughRelays checks that failures on relayed paths
// are not reported as a wrong secret: a relay refusing a circuit, and a
// limited relayed connection, each get their own error.
func TestExplainDialErrorThroughRelays(t *testing.T) {
	p, err := peer.Decode("12D3KooWBMAeFYNbcnkZQabMQBjDgkeV7eyxb7MMwwpzHzytSBFh")
	if err != nil {
		t.Fatal(err)
	}
	circuit := ma.StringCast("/p2p/12D3KooWHmZi35FryTrTCNqVcsG8gViojvdP8n2x6f1VJTiH9GeD/p2p-circuit")
	refused := &swarm.DialError{Peer: p, DialErrors: []swarm.TransportError{
		{Address: circuit, Cause: errors.New("error opening relay circuit: NO_RESERVATION (204)")},
	}}
	m := &Mesh{}
	for _, tc := range []struct {
		err  error
		want error
	}{
		{fmt.Errorf("failed to dial: %w", refused), ErrNoRelayPath},
		{fmt.Errorf("open stream: %w", network.ErrLimitedConn), ErrLimitedRelay},
	} {
		got := m.explainDialError(p, tc.err)
		if errors.Is(got, ErrSecretRejected) || !errors.Is(got, tc.want) {
			t.Errorf("explainDialError(%v) = %v; want %v", tc.err, got, tc.want)
		}
		if !errors.Is(got, tc.err) {
			t.Errorf("explainDialError(%v) = %v; lost the cause", tc.err, got)
		}
	}
}
