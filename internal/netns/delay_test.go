package netns

import (
	"bufio"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/citest"
)

// TestDelay: a host with a Delay of d takes at least 2d for a round trip on
// a connection it opens, the bytes arrive whole and in order both ways, and
// Close removes the redirect.
func TestDelay(t *testing.T) {
	requireRoot(t)
	citest.Tool(t, "nft", "nftables")
	n, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	h1, h2 := addHost(t, n), addHost(t, n)
	ln, err := h2.Listen("tcp4", h2.Addr.String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go echo(ln)
	const d = 50 * time.Millisecond
	p, err := h1.Delay(d)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := h1.DialContext(ctx, "tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for i := range 3 {
		start := time.Now()
		if _, err := io.WriteString(c, "ping\n"); err != nil {
			t.Fatal(err)
		}
		line, err := r.ReadString('\n')
		if err != nil || line != "ping\n" {
			t.Fatalf("round trip %d: read %q, %v", i, line, err)
		}
		if rtt := time.Since(start); rtt < 2*d {
			t.Errorf("round trip %d took %s, want at least %s", i, rtt, 2*d)
		}
	}
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i % 251)
	}
	go func() { c.Write(big); c.(*net.TCPConn).CloseWrite() }()
	got, err := io.ReadAll(r)
	if err != nil || string(got) != string(big) {
		t.Fatalf("1 MiB echoed: %d bytes, %v; want the same bytes back", len(got), err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if out, err := h1.Command(ctx, "nft", "list", "table", "ip", delayTable).CombinedOutput(); err == nil {
		t.Errorf("table %s still there after Close:\n%s", delayTable, out)
	}
}

// echo sends back what each connection sends, until its end.
func echo(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			io.Copy(c, c)
			c.(*net.TCPConn).CloseWrite()
		}()
	}
}
