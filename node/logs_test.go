package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/hostinfo"
	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/node/web"
	"github.com/tbfg/tbfg-node/scheduler"
)

// scriptLine is what the failing build prints: its log must come back as
// these bytes, for the pages to escape.
const scriptLine = "<script>alert(1)</script>"

// TestNodeOpenLog runs two building nodes and reads build logs through
// OpenLog on both: finished logs (one node reads its own, the other fetches
// it over the mesh), from an offset and from the end, and a running build's
// log followed live from both nodes until the build is canceled.
func TestNodeOpenLog(t *testing.T) {
	requireRoot(t)
	system := hostinfo.NativeSystems(runtime.GOARCH)[0]
	nodes, _, _ := startBuildNodes(t, 2, system, nil)
	dir := t.TempDir()
	okDrv, _ := writeShellDrv(t, dir, system, "ok", "echo building ok; echo done > $out", nil, nil)
	badDrv, _ := writeShellDrv(t, dir, system, "bad", "echo '"+scriptLine+"'; exit 1", nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := nodes[1].n.Submit(ctx, adminapi.SubmitRequest{Derivations: []string{file(dir, okDrv), file(dir, badDrv)}})
	if err != nil {
		t.Fatal(err)
	}
	ok, bad := res.Roots[0].ID, res.Roots[1].ID
	waitUntil(t, "both builds ended, on both nodes", func() error {
		for _, r := range nodes {
			if err := ended(r.n, ok, bad); err != nil {
				return err
			}
		}
		return nil
	})

	for _, r := range nodes {
		t.Run("finished/"+r.n.ID(), func(t *testing.T) {
			for _, tc := range []struct {
				id     uint64
				offset int64
				want   string
				start  int64
			}{
				{ok, 0, "building ok\n", 0},
				{ok, 9, "ok\n", 9},
				{bad, -9, "/script>\n", int64(len(scriptLine)) - 8},
				{bad, 0, scriptLine + "\n", 0},
			} {
				got, start := readLog(ctx, t, r.n, tc.id, web.LogOptions{Offset: tc.offset})
				if got != tc.want || start != tc.start {
					t.Errorf("log of build %d from %d: %q at %d, want %q at %d", tc.id, tc.offset, got, start, tc.want, tc.start)
				}
			}
			_, _, err := r.n.OpenLog(ctx, 999, web.LogOptions{})
			if !errors.Is(err, adminapi.ErrNoBuild) || !errors.Is(err, web.ErrNotFound) {
				t.Errorf("log of an unknown build: %v; want adminapi.ErrNoBuild and web.ErrNotFound", err)
			}
		})
	}
	t.Run("live", func(t *testing.T) { followLive(ctx, t, nodes, dir, system) })
	t.Run("removed", func(t *testing.T) { removedLog(ctx, t, nodes, ok) })

}

// followLive runs a build that prints a line and then waits, follows its
// log from both nodes, and checks that the line arrives while the build
// runs and that both followers end once it is canceled.
func followLive(ctx context.Context, t *testing.T, nodes []*running, dir, system string) {
	drv, _ := writeShellDrv(t, dir, system, "slow", "echo first line; sleep 600; echo never > $out", nil, nil)
	res, err := nodes[0].n.Submit(ctx, adminapi.SubmitRequest{Derivations: []string{file(dir, drv)}})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Roots[0].ID
	waitUntil(t, "both nodes know the build", func() error {
		for _, r := range nodes {
			if !known(r.n, id) {
				return fmt.Errorf("%s does not know build %d yet", r.n.ID(), id)
			}
		}
		return nil
	})
	// Follow from before the build starts: the log does not exist yet.
	type result struct {
		text string
		err  error
	}
	results := make(chan result, len(nodes))
	firstLine := make(chan struct{}, len(nodes))
	var wg sync.WaitGroup
	for _, r := range nodes {
		rc, start, err := r.n.OpenLog(ctx, id, web.LogOptions{Follow: true})
		if err != nil || start != 0 {
			t.Fatalf("follow build %d: start %d, %v", id, start, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer rc.Close()
			var b strings.Builder
			buf := make([]byte, 256)
			for {
				n, err := rc.Read(buf)
				b.Write(buf[:n])
				if strings.Contains(b.String(), "first line\n") && n > 0 {
					firstLine <- struct{}{}
				}
				if err != nil {
					if errors.Is(err, io.EOF) {
						err = nil
					}
					results <- result{b.String(), err}
					return
				}
			}
		}()
	}
	defer wg.Wait()
	for range nodes {
		select {
		case <-firstLine:
		case <-ctx.Done():
			t.Fatal("no follower got the first line")
		}
	}
	for _, r := range nodes {
		if st := state(r.n, id); st != scheduler.BuildRunning {
			t.Fatalf("the first line arrived, but build %d is %s on %s, not running", id, st, r.n.ID())
		}
	}
	if _, err := nodes[1].n.Apply(ctx, scheduler.Encode(&scheduler.Cancel{Time: time.Now(), Builds: []scheduler.BuildID{scheduler.BuildID(id)}})); err != nil {
		t.Fatal(err)
	}
	for range nodes {
		res := <-results
		if res.err != nil || res.text != "first line\n" {
			t.Errorf("follower read %q, %v; want the first line, then the end", res.text, res.err)
		}
	}
	for _, r := range nodes {
		if st := state(r.n, id); st != scheduler.BuildCanceled {
			t.Errorf("the follower ended, but build %d is %s on %s", id, st, r.n.ID())
		}
	}
}

// readLog reads a build's log through n.OpenLog.
func readLog(ctx context.Context, t *testing.T, n *Node, id uint64, opts web.LogOptions) (string, int64) {
	t.Helper()
	rc, start, err := n.OpenLog(ctx, id, opts)
	if err != nil {
		t.Fatalf("log of build %d: %v", id, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("log of build %d: %v", id, err)
	}
	return string(b), start
}

// ended checks that n's replica shows ok succeeded and bad failed.
func ended(n *Node, ok, bad uint64) error {
	if st := state(n, ok); st != scheduler.BuildSucceeded {
		return fmt.Errorf("%s: build %d is %s", n.ID(), ok, st)
	}
	if st := state(n, bad); st != scheduler.BuildFailed {
		return fmt.Errorf("%s: build %d is %s", n.ID(), bad, st)
	}
	return nil
}

func known(n *Node, id uint64) bool {
	var ok bool
	n.fsm.Read(func(s *scheduler.State) { _, ok = s.Build(scheduler.BuildID(id)) })
	return ok
}

func state(n *Node, id uint64) scheduler.BuildState {
	var st scheduler.BuildState
	n.fsm.Read(func(s *scheduler.State) {
		b, _ := s.Build(scheduler.BuildID(id))
		st = b.State
	})
	return st
}

// removedLog removes the finished log of build id by retention on the
// nodes, and checks that reading it is a missing log everywhere, and that
// on the node that built it (which held the log) it says when retention
// removed it.
func removedLog(ctx context.Context, t *testing.T, nodes []*running, id uint64) {
	later := time.Now().Add(365 * 24 * time.Hour)
	for _, r := range nodes {
		if _, err := r.n.logs.Prune(later, r.n.logRetention()); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range nodes {
		_, _, err := r.n.OpenLog(ctx, id, web.LogOptions{})
		if !errors.Is(err, web.ErrNotFound) || !errors.Is(err, adminapi.ErrNoLog) {
			t.Errorf("%s: log removed by retention: %v; want web.ErrNotFound and adminapi.ErrNoLog", r.n.ID(), err)
		}
		var builder string
		r.n.fsm.Read(func(s *scheduler.State) { b, _ := s.Build(scheduler.BuildID(id)); builder = b.LastNode })
		if r.n.ID() != builder {
			continue
		}
		if want := "removed by retention on " + later.UTC().Format(time.DateOnly); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: log removed by retention: %v; want it to say %q", r.n.ID(), err, want)
		}
	}
}
