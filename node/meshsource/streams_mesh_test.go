package meshsource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	peermesh "github.com/tbfg/tbfg-node/mesh"
	"github.com/tbfg/tbfg-node/mesh/meshtest"
	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/local"
	"github.com/tbfg/tbfg-node/substitutes/pki"
	"github.com/tbfg/tbfg-node/substitutes/publish"
)

// meshMember is one in-process node on a real mesh over 127.0.0.1.
type meshMember struct {
	mesh   *peermesh.Mesh
	fsm    *scheduler.FSM
	store  *local.Store
	src    *Source
	remote *StreamRemote
	signer *Signer
}

// startMeshMember starts a mesh node with test timings, joined through the
// addresses in peers (none: it bootstraps), with its own store and Source,
// serving the peer streams with ServeStreams.
func startMeshMember(t testing.TB, name string, peers []string) *meshMember {
	t.Helper()
	return startMeshNode(t, name, peers, func(m *peermesh.Mesh, src *Source) error {
		return ServeStreams(m, src, testLogger(t, name+" serve"))
	})
}

// startMeshNode is startMeshMember with serve registering the handlers.
func startMeshNode(t testing.TB, name string, peers []string, serve func(*peermesh.Mesh, *Source) error) *meshMember {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	st, err := local.Open(filepath.Join(dir, "store"), store.GuixDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fsm := scheduler.NewFSM(testLogger(t, name+" fsm"))
	m, err := peermesh.New(peermesh.Config{
		DataDir: dir, Secret: meshtest.Secret, ListenAddrs: []string{meshtest.Listen},
		Voter: true, Bootstrap: len(peers) == 0, Peers: peers, Timing: peermesh.TestTiming,
		RemoveAfter: meshtest.RemoveAfter, GossipInterval: meshtest.GossipInterval, FSM: fsm,
		Logger: meshtest.Logger(t, name+" mesh"),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Closed when the test ends, before the store.
	if err := meshtest.Start(t, m, meshtest.Scale(20*time.Second)); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	mm := &meshMember{mesh: m, fsm: fsm, store: st,
		remote: &StreamRemote{Mesh: m, Dir: store.GuixDir, IdleTimeout: meshtest.Scale(5 * time.Second)}}
	if err := serve(m, mm.source(t, name)); err != nil {
		t.Fatal(err)
	}
	return mm
}

// source makes the member's Source and signer, once the mesh has started
// and its ID is known.
func (mm *meshMember) source(t testing.TB, name string) *Source {
	t.Helper()
	src, err := New(Config{Self: mm.mesh.ID(), FSM: mm.fsm, Store: mm.store, Remote: mm.remote,
		Logs: openLogs(t), Logger: testLogger(t, name)})
	if err != nil {
		t.Fatal(err)
	}
	gk, err := pki.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	mm.src, mm.signer = src, &Signer{Host: name, Guix: gk}
	return src
}

// apply commits c through mm's mesh.
func (mm *meshMember) apply(t testing.TB, c scheduler.Command) {
	t.Helper()
	if err := meshtest.Apply(mm.mesh, scheduler.Encode(c)); err != nil {
		t.Fatalf("apply %T: %v", c, err)
	}
}

// TestStreamsOnMesh runs three real mesh nodes on loopback, each with its
// own store: C fetches what A holds over the "nar" peer stream.
func TestStreamsOnMesh(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three mesh nodes")
	}
	a := startMeshMember(t, "a", nil)
	b := startMeshMember(t, "b", a.mesh.Addrs())
	c := startMeshMember(t, "c", a.mesh.Addrs())
	// d accepts NAR requests and never answers.
	d := startMeshNode(t, "d", a.mesh.Addrs(), func(m *peermesh.Mesh, _ *Source) error {
		return m.HandleStream(NARStream, func(ctx context.Context, _ string, s io.ReadWriteCloser) {
			io.Copy(io.Discard, s)
			<-ctx.Done()
		})
	})
	all := []*meshMember{a, b, c, d}
	meshtest.WaitFor(t, 20*time.Second, "4 members with a leader, knowing each other's addresses", func() error {
		for _, mm := range all {
			ms := mm.mesh.Members()
			if len(ms) != len(all) || mm.mesh.Leader() == "" {
				return fmt.Errorf("%s sees %d members, leader %q", mm.mesh.ID(), len(ms), mm.mesh.Leader())
			}
			for _, m := range ms {
				if m.ID != mm.mesh.ID() && len(m.Addresses) == 0 {
					return fmt.Errorf("%s knows no address of %s", mm.mesh.ID(), m.ID)
				}
			}
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), meshtest.Scale(60*time.Second))
	defer cancel()
	p := addText(t, a.store, "payload", strings.Repeat("mesh stream payload\n", 1<<16))
	var want bytes.Buffer
	if err := a.store.Dump(p, &want); err != nil {
		t.Fatal(err)
	}

	t.Run("NAR from A matches", func(t *testing.T) {
		rc, err := c.remote.OpenNAR(ctx, a.mesh.ID(), p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("got %d bytes, %v; want the %d bytes of A's NAR", len(got), err, want.Len())
		}
	})
	t.Run("not held", func(t *testing.T) {
		_, err := c.remote.OpenNAR(ctx, b.mesh.ID(), p)
		if !errors.Is(err, publish.ErrNotFound) || !strings.Contains(err.Error(), b.mesh.ID()) {
			t.Fatalf("NAR from B, which lacks it: %v; want ErrNotFound naming B", err)
		}
	})
	t.Run("silent holder times out", func(t *testing.T) {
		r := &StreamRemote{Mesh: c.mesh, Dir: store.GuixDir, IdleTimeout: 300 * time.Millisecond}
		start := time.Now()
		_, err := r.OpenNAR(ctx, d.mesh.ID(), p)
		if !errors.Is(err, ErrPeerSilent) || ctx.Err() != nil {
			t.Fatalf("NAR from a silent node: %v (context: %v); want the idle timeout's error", err, ctx.Err())
		}
		t.Logf("failed after %v: %v", time.Since(start), err)
	})
	t.Run("Fetch through the state", func(t *testing.T) {
		for _, mm := range all {
			mm.apply(t, &scheduler.NodeJoined{Time: t0, Node: mm.mesh.ID(), Key: string(mm.signer.Guix.Public.Marshal()),
				Systems: []string{"x86_64-linux"}, MaxBuilds: 1})
		}
		items, err := a.signer.Items(a.store, p)
		if err != nil {
			t.Fatal(err)
		}
		a.apply(t, &scheduler.HolderAdded{Time: t0, Node: a.mesh.ID(), Items: items})
		meshtest.WaitFor(t, 10*time.Second, "C's state records A's item", func() error {
			if _, ok := c.src.record("", p); !ok {
				return errors.New("no record")
			}
			return nil
		})
		if err := c.src.Fetch(ctx, p); err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := c.store.Dump(p, &got); err != nil || !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("C's copy: %d bytes, %v; want A's %d", got.Len(), err, want.Len())
		}
		items, err = c.signer.Items(c.store, p)
		if err != nil {
			t.Fatal(err)
		}
		c.apply(t, &scheduler.HolderAdded{Time: t0, Node: c.mesh.ID(), Items: items})
		meshtest.WaitFor(t, 10*time.Second, "B's state records C as a holder", func() error {
			if it, _ := b.src.record("", p); len(it.Holders) != 2 {
				return fmt.Errorf("holders %v", it.Holders)
			}
			return nil
		})
	})
	t.Run("build log from the node that ran the build", func(t *testing.T) {
		out := "/gnu/store/0123456789abcdfghijklmnpqrsvwxyz-hello"
		a.apply(t, &scheduler.Submit{Time: t0, Submitter: "test", Node: a.mesh.ID(), Derivations: []scheduler.Derivation{
			{Path: fakeDrv, System: "x86_64-linux", Outputs: []scheduler.Output{{Name: "out", Path: out}}}}})
		a.apply(t, &scheduler.Allocate{Time: t0, Allocations: []scheduler.Allocation{{Build: 1, Node: a.mesh.ID()}}})
		a.apply(t, &scheduler.Failed{Time: t0, Build: 1, Node: a.mesh.ID(), Reason: scheduler.ReasonBuildError})
		writeLog(t, a.src.cfg.Logs, store.Path(fakeDrv).Base(), "log written on A\n")
		meshtest.WaitFor(t, 10*time.Second, "C's state records the failure", func() error {
			var b scheduler.BuildInfo
			c.fsm.Read(func(st *scheduler.State) { b, _ = st.Build(1) })
			if b.State != scheduler.BuildFailed {
				return fmt.Errorf("build 1 is %v", b.State)
			}
			return nil
		})
		rc, err := c.src.Log(ctx, store.Path(fakeDrv).Base())
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(got) != "log written on A\n" {
			t.Fatalf("log through C: %q, %v", got, err)
		}
	})
	t.Run("holder closed", func(t *testing.T) {
		if err := a.mesh.Close(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		rc, err := b.remote.OpenNAR(ctx, a.mesh.ID(), p)
		if err == nil {
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
		}
		if err == nil || ctx.Err() != nil {
			t.Fatalf("NAR from a closed node: %v (context: %v); want an error before the deadline", err, ctx.Err())
		}
		t.Logf("failed after %v: %v", time.Since(start), err)
		// C holds the item too: B's Source falls back to it.
		rc, err = b.src.OpenNAR(ctx, p)
		if err != nil {
			t.Fatalf("NAR through B's Source with A gone: %v", err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("got %d bytes, %v; want %d", len(got), err, want.Len())
		}
	})
}

// BenchmarkStreamRemote fetches a 4 MiB NAR from another mesh node through
// StreamRemote, and reports its speed relative to the same NAR dumped from
// the store straight onto a bare peer stream in the same run
// (x-faster-than-raw, below 1: the cost of the request, status and idle
// deadlines). Each fetch must move the whole NAR.
func BenchmarkStreamRemote(b *testing.B) {
	a := startMeshNode(b, "a", nil, func(m *peermesh.Mesh, src *Source) error {
		if err := ServeStreams(m, src, nil); err != nil {
			return err
		}
		return m.HandleStream("raw", func(_ context.Context, _ string, s io.ReadWriteCloser) {
			p, err := decodeRequest(s, store.GuixDir)
			if err == nil {
				src.cfg.Store.Dump(p, s)
			}
		})
	})
	c := startMeshMember(b, "c", a.mesh.Addrs())
	meshtest.WaitFor(b, 20*time.Second, "2 members", func() error {
		if n := len(c.mesh.Members()); n != 2 || c.mesh.Leader() == "" {
			return fmt.Errorf("c sees %d members", n)
		}
		return nil
	})
	p := addText(b, a.store, "bench", strings.Repeat("0123456789abcdef", 1<<18))
	info, err := a.store.Query(p)
	if err != nil {
		b.Fatal(err)
	}
	size := info.Nar.Size
	req, _ := encodeRequest(p)
	ctx := context.Background()
	raw := func() (int64, error) {
		s, err := c.mesh.OpenStream(ctx, a.mesh.ID(), "raw")
		if err != nil {
			return 0, err
		}
		defer s.Close()
		s.Write(req)
		return io.Copy(io.Discard, s)
	}
	remote := func() (int64, error) {
		rc, err := c.remote.OpenNAR(ctx, a.mesh.ID(), p)
		if err != nil {
			return 0, err
		}
		defer rc.Close()
		return io.Copy(io.Discard, rc)
	}
	var tRaw, tRemote time.Duration
	for b.Loop() {
		for _, f := range []struct {
			name  string
			fetch func() (int64, error)
			d     *time.Duration
		}{{"raw", raw, &tRaw}, {"remote", remote, &tRemote}} {
			start := time.Now()
			n, err := f.fetch()
			if err != nil {
				b.Fatal(err)
			}
			*f.d += time.Since(start)
			if n != size {
				b.Fatalf("%s fetch moved %d bytes, want the NAR's %d", f.name, n, size)
			}
		}
	}
	b.SetBytes(2 * size)
	moved := float64(size) * float64(b.N)
	b.ReportMetric(moved/tRemote.Seconds()/1e6, "remote-MB/s")
	b.ReportMetric(moved/tRaw.Seconds()/1e6, "raw-MB/s")
	b.ReportMetric(tRaw.Seconds()/tRemote.Seconds(), "x-faster-than-raw")
}
