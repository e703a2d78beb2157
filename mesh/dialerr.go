package mesh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/sec"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// explainDialError names a failed private-network handshake as a rejected
// secret. A TCP connection that was established (the failure is not in the
// TCP dial itself, nor a timeout, nor a wrong peer ID) but could not be
// upgraded is what a peer with a different secret produces: each side
// decrypts the other's handshake into noise. Relayed paths are no evidence
// either way (a relay that refuses a circuit is not a peer refusing the
// secret), and a limited relayed connection says so.
func (m *Mesh) explainDialError(p peer.ID, err error) error {
	if errors.Is(err, network.ErrLimitedConn) {
		return fmt.Errorf("connect to %s: %w, on which no stream opens (the relay limits its circuits; members relaying with --relay on or auto do not): %w", p, ErrLimitedRelay, err)
	}
	var de *swarm.DialError
	if !errors.As(err, &de) || len(de.DialErrors) == 0 {
		if m.ctx.Err() == nil && timedOut(err) && slices.ContainsFunc(m.host.Peerstore().Addrs(p), directTCPReachable) {
			return fmt.Errorf("%w by peer %s: wrong secret? (handshake stalled: %w)", ErrSecretRejected, p, err)
		}
		return fmt.Errorf("connect to %s: %w", p, err)
	}
	direct := 0
	for _, te := range de.DialErrors {
		if isRelayed(te.Address) {
			continue
		}
		direct++
		if !handshakeFailure(te.Cause) && !(timedOut(te.Cause) && tcpReachable(te.Address)) {
			return fmt.Errorf("connect to %s: %w", p, err)
		}
	}
	if direct == 0 {
		return fmt.Errorf("connect to %s: %w (it holds no reservation at a relay yet: it makes one within seconds of reaching a relaying member; if none relays, give a publicly reachable member --relay on, or open TCP 8760 to the peer): %w",
			p, ErrNoRelayPath, err)
	}
	return fmt.Errorf("%w by peer %s: wrong secret? (%w)", ErrSecretRejected, p, err)
}

// directTCPReachable is tcpReachable for an address that is not relayed.
func directTCPReachable(addr ma.Multiaddr) bool {
	return !isRelayed(addr) && tcpReachable(addr)
}

// handshakeFailure reports whether a per-address dial error happened after
// the TCP connection was established, in the private-network or security
// handshake.
func handshakeFailure(err error) bool {
	var op *net.OpError
	var mismatch sec.ErrPeerIDMismatch
	var mismatchp *sec.ErrPeerIDMismatch
	switch {
	case errors.As(err, &op) && op.Op == "dial",
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, swarm.ErrGaterDisallowedConnection),
		errors.As(err, &mismatch), errors.As(err, &mismatchp):
		return false
	}
	var te interface{ Timeout() bool }
	return !(errors.As(err, &te) && te.Timeout())
}

// timedOut reports whether a dial ended by its deadline: a handshake
// under a wrong secret may also just stall, each side waiting for a
// message length that the other's noise announced.
func timedOut(err error) bool {
	var te interface{ Timeout() bool }
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &te) && te.Timeout()
}

// tcpReachable reports whether a plain TCP connection to a stalled
// address opens at once, which tells a stalled handshake from an
// unreachable host.
func tcpReachable(addr ma.Multiaddr) bool {
	c, err := (&manet.Dialer{Dialer: net.Dialer{Timeout: time.Second}}).Dial(addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func contextWithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}
