package mesh

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/raftdb"
)

// goldenDataDir is the data dir of a single-node mesh as the node's first
// Raft store wrote it (see its README): the node is the only voter, and
// its log holds the commands golden-1 and golden-2 in term 3.
const goldenDataDir = "../internal/raftdb/testdata/datadir-v1"

// TestStartOnFirstStoreDataDir starts a node on a copy of that data dir: it
// is elected in a later term, applies the two commands of its log, commits
// a new one, and after a restart replays all three from the upgraded store.
func TestStartOnFirstStoreDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "n0")
	copyFile(t, filepath.Join(goldenDataDir, "identity.key"), filepath.Join(dir, identityFile))
	copyFile(t, filepath.Join(goldenDataDir, "raft", "raft.db"), filepath.Join(dir, "raft", "raft.db"))
	n := startNode(t, testConfig(t, dir))
	const id = "12D3KooWC4T1AXU2s2YBgGJ2FeaYVtsKoHZWJeubnWe9SnuSE7Zb"
	if n.ID() != id {
		t.Fatalf("node ID %s; the golden identity is %s", n.ID(), id)
	}
	applied := func(want ...string) func() error {
		return func() error {
			if l := n.Leader(); l != id {
				return fmt.Errorf("leader %q", l)
			}
			if got := n.fsm.entries(); !slices.Equal(got, want) {
				return fmt.Errorf("applied %q", got)
			}
			return nil
		}
	}
	waitFor(t, 10*time.Second, "leader with the golden commands applied", applied("golden-1", "golden-2"))
	if _, err := n.Apply(t.Context(), []byte("after-upgrade")); err != nil {
		t.Fatal(err)
	}
	n = n.restart(t)
	waitFor(t, 10*time.Second, "the log replayed after a restart", applied("golden-1", "golden-2", "after-upgrade"))
	if cid := n.raftNode().clusterID(); cid != "golden-cluster" {
		t.Errorf("cluster ID %q; want golden-cluster", cid)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := raftdb.Open(filepath.Join(dir, "raft", "raft.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if term, _ := s.GetUint64([]byte("CurrentTerm")); term <= 3 {
		t.Errorf("CurrentTerm %d after two elections; want more than 3", term)
	}
	if cand, _ := s.Get([]byte("LastVoteCand")); string(cand) != id {
		t.Errorf("LastVoteCand %q; want the node itself", cand)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
