package mesh

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// blobBlock is repeated to make the bytes a blob handler serves.
var blobBlock = func() []byte {
	b := make([]byte, 1<<20)
	rand.Read(b)
	return b
}()

// blobSum is the SHA-256 of n bytes of repeated blobBlock.
func blobSum(n int) [32]byte {
	h := sha256.New()
	for n > 0 {
		k := min(n, len(blobBlock))
		h.Write(blobBlock[:k])
		n -= k
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// serveBlob answers a request line "<n>\n" by streaming n bytes.
func serveBlob(_ context.Context, _ string, s io.ReadWriteCloser) {
	line, err := bufio.NewReader(s).ReadString('\n')
	if err != nil {
		return
	}
	n, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		return
	}
	for n > 0 {
		k := min(n, len(blobBlock))
		if _, err := s.Write(blobBlock[:k]); err != nil {
			return
		}
		n -= k
	}
}

// fetchBlob asks peer for n bytes over the "blob" stream and returns their
// SHA-256 and count.
func fetchBlob(ctx context.Context, from *testNode, peerID string, n int) ([32]byte, int64, error) {
	var sum [32]byte
	rw, err := from.OpenStream(ctx, peerID, "blob")
	if err != nil {
		return sum, 0, err
	}
	defer rw.Close()
	s := rw.(Stream)
	if _, err := fmt.Fprintf(s, "%d\n", n); err != nil {
		return sum, 0, err
	}
	// Half-close: the request is complete, the response still flows.
	if err := s.CloseWrite(); err != nil {
		return sum, 0, err
	}
	h := sha256.New()
	got, err := io.Copy(h, s)
	h.Sum(sum[:0])
	return sum, got, err
}

func TestPeerStreams(t *testing.T) {
	c := newCluster(t, 3, nil)
	waitFor(t, 15*time.Second, "3 voters", func() error { return c.agreed(3, 3) })
	for _, n := range c.nodes {
		if err := n.HandleStream("blob", serveBlob); err != nil {
			t.Fatal(err)
		}
		if err := n.HandleStream("boom", func(context.Context, string, io.ReadWriteCloser) { panic("handler bug") }); err != nil {
			t.Fatal(err)
		}
	}
	var followers []*testNode
	for _, n := range c.live() {
		if n.Leader() != n.ID() {
			followers = append(followers, n)
		}
	}
	from, to := followers[0], followers[1]
	ctx, cancel := context.WithTimeout(context.Background(), scale(60*time.Second))
	defer cancel()

	t.Run("50 MB from a follower to another", func(t *testing.T) {
		const size = 50 << 20
		start := time.Now()
		sum, got, err := fetchBlob(ctx, from, to.ID(), size)
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		if got != size || sum != blobSum(size) {
			t.Fatalf("got %d bytes with sha256 %x, want %d bytes with %x", got, sum, size, blobSum(size))
		}
		t.Logf("50 MB in %v", time.Since(start))
	})
	t.Run("unknown peer", func(t *testing.T) {
		stranger := randomPeerID(t)
		_, err := from.OpenStream(ctx, stranger, "blob")
		if !errors.Is(err, ErrNotMember) || !strings.Contains(err.Error(), stranger) {
			t.Fatalf("open stream to a stranger: %v; want ErrNotMember naming it", err)
		}
		if _, err := from.OpenStream(ctx, "not-a-peer-id", "blob"); err == nil || !strings.Contains(err.Error(), "not-a-peer-id") {
			t.Fatalf("open stream to a bad id: %v; want an error naming it", err)
		}
	})
	t.Run("handler panic", func(t *testing.T) {
		rw, err := from.OpenStream(ctx, to.ID(), "boom")
		if err != nil {
			t.Fatal(err)
		}
		rw.Write([]byte("x"))
		_, err = io.ReadAll(rw)
		rw.Close()
		if err == nil {
			t.Fatal("stream of a panicking handler ended cleanly; want it reset")
		}
		// The node carries on.
		if _, got, err := fetchBlob(ctx, from, to.ID(), 1000); err != nil || got != 1000 {
			t.Fatalf("fetch after a handler panic: %d bytes, %v", got, err)
		}
		apply(t, to, "still-alive")
	})
	t.Run("closing the stream's context resets it", func(t *testing.T) {
		sctx, scancel := context.WithCancel(ctx)
		rw, err := from.OpenStream(sctx, to.ID(), "blob")
		if err != nil {
			t.Fatal(err)
		}
		defer rw.Close()
		fmt.Fprintf(rw, "%d\n", 1<<40) // more than will ever be read
		buf := make([]byte, 1024)
		if _, err := io.ReadFull(rw, buf); err != nil {
			t.Fatal(err)
		}
		scancel()
		if _, err := io.Copy(io.Discard, rw); err == nil {
			t.Fatal("read after cancel ended cleanly; want an error")
		}
	})
}

func TestStreamsOnlyBetweenMembers(t *testing.T) {
	c := newCluster(t, 1, nil)
	member := c.nodes[0]
	served := make(chan struct{}, 1)
	if err := member.HandleStream("blob", func(ctx context.Context, p string, s io.ReadWriteCloser) {
		served <- struct{}{}
		serveBlob(ctx, p, s)
	}); err != nil {
		t.Fatal(err)
	}
	// A node with the secret that is not (yet) in the configuration: it
	// cannot open streams, and a raw stream from it is refused.
	outsider := startJoiner(t, member)
	waitFor(t, 10*time.Second, "outsider connected", func() error {
		if !outsider.started.Load() || len(outsider.host.Network().Peers()) == 0 {
			return errors.New("not connected")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), scale(10*time.Second))
	defer cancel()
	if _, err := outsider.OpenStream(ctx, member.ID(), "blob"); !errors.Is(err, ErrNotMember) {
		t.Fatalf("outsider opened a stream: %v; want ErrNotMember", err)
	}
	s, err := outsider.host.NewStream(ctx, member.host.ID(), streamProtocol("blob"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fmt.Fprintf(s, "10\n")
	if data, err := io.ReadAll(s); err == nil || len(data) > 0 {
		t.Fatalf("outsider read %d bytes, err %v; want the stream reset", len(data), err)
	}
	select {
	case <-served:
		t.Fatal("handler ran for a non-member")
	default:
	}
}

func TestHandleStreamNames(t *testing.T) {
	m, err := New(withFSM(testConfig(t, t.TempDir())))
	if err != nil {
		t.Fatal(err)
	}
	nop := func(context.Context, string, io.ReadWriteCloser) {}
	tests := []struct {
		name string
		ok   bool
	}{
		{"nar", true}, {"build-log.v2", true}, {"drv_1", true},
		{"", false}, {"NAR", false}, {"a/b", false}, {"-x", false}, {"a b", false},
		{strings.Repeat("a", 65), false}, {"nar", false}, // registered above
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.name), func(t *testing.T) {
			err := m.HandleStream(tt.name, nop)
			if (err == nil) != tt.ok {
				t.Fatalf("HandleStream(%q) = %v, want ok=%v", tt.name, err, tt.ok)
			}
			if err != nil && !bytes.Contains([]byte(err.Error()), []byte(fmt.Sprintf("%q", tt.name))) {
				t.Errorf("error %q does not name the stream", err)
			}
		})
	}
}

func randomPeerID(t *testing.T) string {
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}
