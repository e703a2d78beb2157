package netns

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// delayMark marks the connections a Delay opens itself, which its redirect
// leaves alone.
const delayMark = 0x74626764

// delayTable is the nftables table of a host's Delay.
const delayTable = "tbfgdelay"

// delayChunks bounds the chunks a Delay holds in one direction of one
// connection; a reader waits beyond it.
const delayChunks = 1024

// Delay is latency added to the TCP connections a host opens (Host.Delay).
type Delay struct {
	h  *Host
	d  time.Duration
	ln net.Listener

	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// Delay makes every TCP connection the host opens to another address in
// 198.18.0.0/15 late by d in each direction, so that a round trip on it
// takes 2d more: give every host the same Delay for links of round-trip
// time 2d, as `netem delay d` on each host's interface would.
//
// It is a proxy in this process, not netem, which kernels without
// sch_netem lack: an nftables rule in the host redirects its outgoing
// connections to a listener on the host's loopback, which opens the real
// connection and writes each chunk it reads d after reading it. Unlike
// netem it neither delays TCP's handshake nor its acknowledgements (each
// side of the proxy acknowledges at once), so it models the latency of
// requests and responses, not a window-limited transfer. Connections
// opened to the host are delayed by the host that opens them, if it has a
// Delay. Close removes the rule and closes the proxied connections.
func (h *Host) Delay(d time.Duration) (*Delay, error) {
	if d <= 0 {
		return nil, fmt.Errorf("delay %s: want a positive duration", d)
	}
	ln, err := h.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Delay{h: h, d: d, ln: ln, conns: map[net.Conn]struct{}{}}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := h.nft(delayRules(h.Addr, port)); err != nil {
		ln.Close()
		return nil, err
	}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// delayRules redirects the host's TCP connections to other addresses in
// 198.18.0.0/15 to port, except those marked as the proxy's own.
func delayRules(self netip.Addr, port int) string {
	return fmt.Sprintf(`table ip %s {
	chain output {
		type nat hook output priority -100; policy accept;
		meta mark %#x return
		ip daddr != 198.18.0.0/15 return
		ip daddr %s return
		meta l4proto tcp redirect to :%d
	}
}
`, delayTable, delayMark, self, port)
}

// nft loads rules into the host's nftables.
func (h *Host) nft(rules string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := h.Command(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: nft: %w: %s", h.Name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (p *Delay) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			c.Close()
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// track records c, unless the Delay is closed.
func (p *Delay) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Delay) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

// serve connects c to where it was headed and forwards both ways.
func (p *Delay) serve(c net.Conn) {
	defer p.wg.Done()
	defer p.untrack(c)
	to, err := originalDst(c)
	if err != nil {
		return
	}
	out, err := p.dial(to)
	if err != nil {
		return
	}
	if !p.track(out) {
		out.Close()
		return
	}
	defer p.untrack(out)
	var both sync.WaitGroup
	both.Add(2)
	go func() { defer both.Done(); p.pipe(out, c) }()
	go func() { defer both.Done(); p.pipe(c, out) }()
	both.Wait()
}

// dial opens the real connection from inside the host, marked so that the
// redirect lets it through.
func (p *Delay) dial(to netip.AddrPort) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, delayMark)
		}); err != nil {
			return err
		}
		return serr
	}}
	var c net.Conn
	err := p.h.do(func() error {
		var err error
		c, err = d.Dial("tcp4", to.String())
		return err
	})
	return c, err
}

// chunk is bytes read and when they may be written.
type chunk struct {
	b   []byte
	due time.Time
}

// pipe writes to dst what src sends, each chunk d after it was read, and
// closes dst's write side at src's end of stream. On an error it closes
// both.
func (p *Delay) pipe(dst, src net.Conn) {
	q := make(chan chunk, delayChunks)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{b: buf[:n], due: time.Now().Add(p.d)}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					dst.Close()
				}
				return
			}
		}
	}()
	for c := range q {
		t := time.NewTimer(time.Until(c.due))
		<-t.C
		if _, err := dst.Write(c.b); err != nil {
			src.Close()
			dst.Close()
			for range q {
			}
			return
		}
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}

// originalDst is where a redirected connection was headed
// (SO_ORIGINAL_DST).
func originalDst(c net.Conn) (netip.AddrPort, error) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return netip.AddrPort{}, errors.New("not a TCP connection")
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, err
	}
	var mreq *unix.IPv6Mreq
	var serr error
	if err := rc.Control(func(fd uintptr) {
		// struct sockaddr_in fits in the 20 bytes of an ipv6_mreq, the
		// usual way to read SO_ORIGINAL_DST through x/sys.
		mreq, serr = unix.GetsockoptIPv6Mreq(int(fd), unix.SOL_IP, unix.SO_ORIGINAL_DST)
	}); err != nil {
		return netip.AddrPort{}, err
	}
	if serr != nil {
		return netip.AddrPort{}, fmt.Errorf("original destination: %w", serr)
	}
	a := mreq.Multiaddr
	port := uint16(a[2])<<8 | uint16(a[3])
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{a[4], a[5], a[6], a[7]}), port), nil
}

// Close removes the redirect, closes every proxied connection and waits
// for the proxy's goroutines.
func (p *Delay) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	err := p.h.nft("delete table ip " + delayTable + "\n")
	p.ln.Close()
	p.wg.Wait()
	return err
}
