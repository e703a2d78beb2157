package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/mesh"
	"github.com/tbfg/tbfg-node/node/datadir"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// fakeBackend is an in-memory Backend.
type fakeBackend struct {
	status Status
	nodes  []NodeView
	builds []BuildView
	acl    ACLView
	err    error
	left   atomic.Bool

	mu        sync.Mutex
	submitted []SubmitRequest
	queries   []BuildQuery
	actions   []string          // "cancel 1 2", "retry 3"
	changes   []Changes         // answered in turn by Changes, then it waits
	logs      map[uint64]string // build id → log text
	logErr    error             // returned by a log's Read after its text
	polling   atomic.Int32      // Changes calls that waited

	idx     uint64        // applied index
	applied chan struct{} // closed and replaced when idx moves
}

// setIndex moves the applied index and wakes WaitIndex.
func (f *fakeBackend) setIndex(i uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.idx = i
	if f.applied != nil {
		close(f.applied)
		f.applied = nil
	}
}

func (f *fakeBackend) Index() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.idx
}

func (f *fakeBackend) WaitIndex(ctx context.Context, index uint64) error {
	for {
		f.mu.Lock()
		if f.idx >= index {
			f.mu.Unlock()
			return nil
		}
		if f.applied == nil {
			f.applied = make(chan struct{})
		}
		ch := f.applied
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (f *fakeBackend) Changes(ctx context.Context, cursor string) (Changes, error) {
	f.mu.Lock()
	if len(f.changes) > 0 {
		ch := f.changes[0]
		f.changes = f.changes[1:]
		f.mu.Unlock()
		return ch, f.err
	}
	f.mu.Unlock()
	f.polling.Add(1)
	<-ctx.Done()
	return Changes{Cursor: cursor}, nil
}

func (f *fakeBackend) action(name string, ids []uint64) (ActionResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.actions = append(f.actions, fmt.Sprint(name, ids))
	res := ActionResult{Index: 7}
	for _, id := range ids {
		res.Builds = append(res.Builds, BuildView{ID: id, State: name + "ed"})
	}
	return res, f.err
}

func (f *fakeBackend) Cancel(_ context.Context, ids []uint64) (ActionResult, error) {
	return f.action("cancel", ids)
}

func (f *fakeBackend) Retry(_ context.Context, ids []uint64) (ActionResult, error) {
	return f.action("retry", ids)
}

func (f *fakeBackend) Log(_ context.Context, id uint64, _ bool) (io.ReadCloser, error) {
	text, ok := f.logs[id]
	if !ok {
		return nil, fmt.Errorf("%w: build %d has not started", ErrNoLog, id)
	}
	return io.NopCloser(io.MultiReader(strings.NewReader(text), errReader{f.logErr})), nil
}

// errReader returns err, or io.EOF if nil.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) {
	if r.err == nil {
		return 0, io.EOF
	}
	return 0, r.err
}

func (f *fakeBackend) Submit(_ context.Context, req SubmitRequest) (SubmitResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.submitted = append(f.submitted, req)
	res := SubmitResult{}
	for i, d := range req.Derivations {
		res.Roots = append(res.Roots, SubmittedBuild{ID: uint64(i + 1), Derivation: d, State: "queued"})
	}
	res.Builds = res.Roots
	return res, f.err
}

func (f *fakeBackend) Builds(q BuildQuery) ([]BuildView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, q)
	return f.builds, f.err
}

func (f *fakeBackend) ACL() (ACLView, error) { return f.acl, f.err }

func (f *fakeBackend) GC(_ context.Context, req GCRequest) (GCResult, error) {
	return GCResult{DryRun: req.DryRun, Want: req.Free, Freed: 7,
		Removed: []GCItem{{Path: "/gnu/store/x-a", Size: 7, Class: "fetched"}}}, f.err
}

func (f *fakeBackend) Status() Status             { return f.status }
func (f *fakeBackend) Nodes() ([]NodeView, error) { return f.nodes, f.err }
func (f *fakeBackend) Leave(context.Context) error {
	if f.err != nil {
		return f.err
	}
	f.left.Store(true)
	return nil
}

// serveAdmin runs the admin API for b on a socket in a new data dir.
func serveAdmin(t *testing.T, b Backend) *Client {
	t.Helper()
	dir := t.TempDir()
	a := NewServer(b, slog.New(slog.DiscardHandler))
	if err := a.Listen(filepath.Join(dir, datadir.AdminSocket)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	fi, err := os.Stat(filepath.Join(dir, datadir.AdminSocket))
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("admin socket: %v, %v; want a socket with mode 0600", fi.Mode(), err)
	}
	c := NewClient(dir)
	t.Cleanup(c.Close)
	return c
}

func sampleMembers() []mesh.Member {
	seen := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	return []mesh.Member{
		{ID: "12D3KooWA", Addresses: []string{"/ip4/198.18.0.1/tcp/8760/p2p/12D3KooWA"}, Suffrage: "voter", Leader: true, LastSeen: seen, Conn: "direct",
			Status: &mesh.NodeStatus{Systems: []string{"x86_64-linux", "i686-linux"}, Features: []string{}, MaxBuilds: 2, Load1: 0.5, Cores: 2,
				StoreFreeBytes: 1 << 30, DataFreeBytes: 2 << 30, Version: "v0.1.0"}},
		{ID: "12D3KooWB", Suffrage: "nonvoter", Reachability: "private"},
	}
}

func TestAdminAPINodesJSON(t *testing.T) {
	var views []NodeView
	for _, m := range sampleMembers() {
		views = append(views, NewNodeView(m, "12D3KooWB"))
	}
	c := serveAdmin(t, &fakeBackend{nodes: views})
	got, err := c.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(got, "", "  ")
	golden(t, "nodes.json", append(b, '\n'))
}

func TestAdminAPIStatusJSON(t *testing.T) {
	st := Status{ID: "12D3KooWA", Leader: "12D3KooWA", State: StateRunning, Addresses: []string{"/ip4/198.18.0.1/tcp/8760/p2p/12D3KooWA"},
		Members: 2, Voters: 1, DataDir: "/var/lib/tbfg", AppliedIndex: 42, NodeStatus: *sampleMembers()[0].Status}
	c := serveAdmin(t, &fakeBackend{status: st})
	got, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(got, "", "  ")
	golden(t, "status.json", append(b, '\n'))
}

func TestAdminAPIErrors(t *testing.T) {
	f := &fakeBackend{err: ErrUnavailable}
	c := serveAdmin(t, f)
	if _, err := c.Nodes(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Nodes while starting: %v, want ErrUnavailable", err)
	}
	if _, err := c.Leave(context.Background()); !errors.Is(err, ErrUnavailable) || f.left.Load() {
		t.Errorf("Leave while starting: %v, left %v", err, f.left.Load())
	}
	f.err = nil
	if _, err := c.Leave(context.Background()); err != nil || !f.left.Load() {
		t.Errorf("Leave: %v, left %v", err, f.left.Load())
	}
	none := NewClient(t.TempDir())
	defer none.Close()
	if _, err := none.Status(context.Background()); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Status without a node: %v, want ErrNotRunning", err)
	}
}

func TestAdminACL(t *testing.T) {
	want := ACLView{ACL: "(acl)", Members: []ACLMember{{ID: "a", Status: "active", Key: "k"}}}
	c := serveAdmin(t, &fakeBackend{acl: want})
	got, err := c.ACL(context.Background())
	if err != nil || got.ACL != want.ACL || !slices.Equal(got.Members, want.Members) {
		t.Fatalf("ACL = %+v, %v; want %+v", got, err, want)
	}
	c = serveAdmin(t, &fakeBackend{err: ErrUnavailable})
	if _, err := c.ACL(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("ACL of a starting node: %v, want ErrUnavailable", err)
	}
}

// golden compares got with testdata/name; go test ./node/adminapi -run Admin -update
// rewrites it.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs:\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}
