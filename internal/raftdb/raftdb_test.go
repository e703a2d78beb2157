package raftdb

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/tbfg/tbfg-node/internal/poll"
)

const golden = "testdata/datadir-v1"

// goldenStore copies the golden data dir's store into a temporary directory
// and returns its path and the node's ID, read from its identity.key.
func goldenStore(t *testing.T) (string, raft.ServerID) {
	t.Helper()
	key, err := os.ReadFile(filepath.Join(golden, "identity.key"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := crypto.UnmarshalPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(golden, "raft", "raft.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := tempStore(t)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, raft.ServerID(id.String())
}

func open(t *testing.T, path string) *raftboltdb.BoltStore {
	t.Helper()
	s, err := Open(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestOpenGoldenV1 opens the store the first store wrote and finds the
// three entries, the term and the vote as written, in a file that is now
// raft-boltdb's own, with nothing left beside it.
func TestOpenGoldenV1(t *testing.T) {
	path, self := goldenStore(t)
	s := open(t, path)
	checkGolden(t, s, self)
	if names := dirNames(t, filepath.Dir(path)); !slices.Equal(names, []string{"raft.db"}) {
		t.Errorf("files beside the store after the upgrade: %v", names)
	}
	s.Close()
	// raft-boltdb reads the file by itself now.
	direct, err := raftboltdb.New(raftboltdb.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, direct, self)
	direct.Close()
	before, _ := os.Stat(path)
	checkGolden(t, open(t, path), self)
	if after, _ := os.Stat(path); !os.SameFile(before, after) {
		t.Error("the store was rewritten again on the second open")
	}
}

func checkGolden(t *testing.T, s *raftboltdb.BoltStore, self raft.ServerID) {
	t.Helper()
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	want := []raft.Log{
		{Index: 1, Term: 1, Type: raft.LogConfiguration, AppendedAt: at},
		{Index: 2, Term: 2, Type: raft.LogCommand, Data: []byte("golden-1"), AppendedAt: at.Add(time.Second)},
		{Index: 3, Term: 3, Type: raft.LogCommand, Data: []byte("golden-2"), Extensions: []byte("ext"),
			AppendedAt: at.Add(2 * time.Second)},
	}
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	if first != 1 || last != 3 {
		t.Fatalf("first, last index = %d, %d; want 1, 3", first, last)
	}
	for _, w := range want {
		var l raft.Log
		if err := s.GetLog(w.Index, &l); err != nil {
			t.Fatalf("entry %d: %v", w.Index, err)
		}
		if l.Index != w.Index || l.Term != w.Term || l.Type != w.Type || !l.AppendedAt.Equal(w.AppendedAt) ||
			!bytes.Equal(l.Extensions, w.Extensions) || w.Data != nil && !bytes.Equal(l.Data, w.Data) {
			t.Errorf("entry %d = %+v; want %+v", w.Index, l, w)
		}
		if l.Type == raft.LogConfiguration {
			conf := raft.DecodeConfiguration(l.Data)
			want := []raft.Server{{Suffrage: raft.Voter, ID: self, Address: raft.ServerAddress(self)}}
			if !reflect.DeepEqual(conf.Servers, want) {
				t.Errorf("configuration = %+v; want %+v", conf.Servers, want)
			}
		}
	}
	for k, v := range map[string]uint64{"CurrentTerm": 3, "LastVoteTerm": 3} {
		if got, err := s.GetUint64([]byte(k)); got != v || err != nil {
			t.Errorf("%s = %d, %v; want %d", k, got, err, v)
		}
	}
	for k, v := range map[string]string{"LastVoteCand": string(self), "tbfg_cluster_id": "golden-cluster"} {
		if got, err := s.Get([]byte(k)); string(got) != v || err != nil {
			t.Errorf("%s = %q, %v; want %q", k, got, err, v)
		}
	}
	if _, err := s.Get([]byte("unset")); err == nil || err.Error() != "not found" {
		t.Errorf("Get of an unset key: %v; Raft expects the text \"not found\"", err)
	}
}

// TestRaftStartsOnGoldenV1 starts Raft on the upgraded golden store: the
// node, the only voter of its configuration, is elected in a later term and
// applies the two commands of its log.
func TestRaftStartsOnGoldenV1(t *testing.T) {
	path, self := goldenStore(t)
	s := open(t, path)
	snaps := raft.NewInmemSnapshotStore()
	conf := raft.DefaultConfig()
	conf.LocalID = self
	conf.Logger = hclog.NewNullLogger()
	conf.HeartbeatTimeout, conf.ElectionTimeout = 50*time.Millisecond, 50*time.Millisecond
	conf.LeaderLeaseTimeout, conf.CommitTimeout = 50*time.Millisecond, 5*time.Millisecond
	_, trans := raft.NewInmemTransport(raft.ServerAddress(self))
	fsm := &listFSM{}
	r, err := raft.NewRaft(conf, fsm, s, s, snaps, trans)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown()
	poll.Fatal(t, 10*time.Second, 10*time.Millisecond, "leadership and the golden commands applied", func() error {
		if r.State() != raft.Leader {
			return fmt.Errorf("state %v", r.State())
		}
		if got := fsm.list(); !slices.Equal(got, []string{"golden-1", "golden-2"}) {
			return fmt.Errorf("applied %q", got)
		}
		return nil
	})
	if err := r.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	if term, _ := s.GetUint64([]byte("CurrentTerm")); term <= 3 {
		t.Errorf("CurrentTerm %d after an election; want more than 3", term)
	}
	if cand, _ := s.Get([]byte("LastVoteCand")); string(cand) != string(self) {
		t.Errorf("LastVoteCand = %q; want %q", cand, self)
	}
}

// listFSM records the commands it applies.
type listFSM struct {
	mu  sync.Mutex
	cmd []string
}

func (f *listFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmd = append(f.cmd, string(l.Data))
	return nil
}

func (f *listFSM) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.cmd)
}

func (f *listFSM) Snapshot() (raft.FSMSnapshot, error) { return nil, errors.New("no snapshots") }
func (f *listFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

// TestUpgradeManyEntries upgrades a log longer than one write batch, with
// entries of every shape, and finds each one unchanged.
func TestUpgradeManyEntries(t *testing.T) {
	path := tempStore(t)
	const first, n = 100, 2*batchSize + 7
	entries := map[uint64][]byte{}
	var want []raft.Log
	for i := uint64(first); i < first+n; i++ {
		l := raft.Log{Index: i, Term: i / 500, Type: raft.LogType(i % 6)}
		if i%3 != 0 {
			l.Data = bytes.Repeat([]byte{byte(i)}, int(i%300))
		}
		if i%5 == 0 {
			l.Extensions = []byte(fmt.Sprint(i))
		}
		if i%7 != 0 {
			l.AppendedAt = time.Unix(1_800_000_000, int64(i))
		}
		entries[i] = encodeV1(&l)
		want = append(want, l)
	}
	writeV1(t, path, entries, map[string][]byte{"CurrentTerm": {0, 0, 0, 0, 0, 0, 0, 9}})
	s := open(t, path)
	if lo, _ := s.FirstIndex(); lo != first {
		t.Errorf("first index %d; want %d", lo, first)
	}
	if hi, _ := s.LastIndex(); hi != first+n-1 {
		t.Errorf("last index %d; want %d", hi, first+n-1)
	}
	for _, w := range want {
		var l raft.Log
		if err := s.GetLog(w.Index, &l); err != nil {
			t.Fatalf("entry %d: %v", w.Index, err)
		}
		if l.Index != w.Index || l.Term != w.Term || l.Type != w.Type || !l.AppendedAt.Equal(w.AppendedAt) ||
			!bytes.Equal(l.Data, w.Data) || !bytes.Equal(l.Extensions, w.Extensions) {
			t.Fatalf("entry %d = %+v; want %+v", w.Index, l, w)
		}
	}
	if term, err := s.GetUint64([]byte("CurrentTerm")); term != 9 || err != nil {
		t.Errorf("CurrentTerm = %d, %v; want 9", term, err)
	}
}

// TestUpgradeRejectsCorruptEntry: an old file with an entry that cannot be
// read is left as it was, with nothing beside it, and the error names the
// entry.
func TestUpgradeRejectsCorruptEntry(t *testing.T) {
	for _, tc := range []struct {
		name  string
		entry []byte
		want  string
	}{
		{"truncated", encodeV1(&raft.Log{Index: 2, Data: []byte("abc")})[:6], "log entry 2: data: truncated"},
		{"wrong index", encodeV1(&raft.Log{Index: 5}), "log entry 2: holds index 5"},
		{"other encoding", []byte{0x86}, "log entry 2: unknown encoding"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tempStore(t)
			writeV1(t, path, map[uint64][]byte{1: encodeV1(&raft.Log{Index: 1}), 2: tc.entry}, nil)
			before, _ := os.ReadFile(path)
			_, err := Open(path, slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open = %v; want an error containing %q", err, tc.want)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Error("the old file changed")
			}
			if names := dirNames(t, filepath.Dir(path)); !slices.Equal(names, []string{"raft.db"}) {
				t.Errorf("files beside the store: %v", names)
			}
		})
	}
}

// TestUpgradeAfterCrash starts from what an upgrade stopped at any point
// leaves: Open ends with the upgraded store and nothing beside it.
func TestUpgradeAfterCrash(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, path string)
	}{
		{"new file half written", func(t *testing.T, path string) {
			writeFile(t, path+upgradingSuffix, []byte("half a bbolt file"))
		}},
		{"old file linked as backup", func(t *testing.T, path string) {
			if err := os.Link(path, path+backupSuffix); err != nil {
				t.Fatal(err)
			}
		}},
		{"new file in place, backup left", func(t *testing.T, path string) {
			backup, _ := os.ReadFile(path)
			s := open(t, path)
			s.Close()
			writeFile(t, path+backupSuffix, backup)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, self := goldenStore(t)
			tc.setup(t, path)
			checkGolden(t, open(t, path), self)
			if names := dirNames(t, filepath.Dir(path)); !slices.Equal(names, []string{"raft.db"}) {
				t.Errorf("files beside the store: %v", names)
			}
		})
	}
}

// TestOpenCurrentInPlace: a new store, and one already upgraded, are
// opened as they are, not rewritten.
func TestOpenCurrentInPlace(t *testing.T) {
	path := tempStore(t)
	s := open(t, path)
	if err := s.StoreLogs([]*raft.Log{{Index: 1, Term: 1, Data: []byte("a")}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	before, _ := os.Stat(path)
	s = open(t, path)
	after, _ := os.Stat(path)
	if !os.SameFile(before, after) {
		t.Error("a current store was replaced on open")
	}
	var l raft.Log
	if err := s.GetLog(1, &l); err != nil || string(l.Data) != "a" {
		t.Errorf("entry 1 = %+v, %v", l, err)
	}
}

// TestOpenEmptyFile: a file left empty by a stop while it was being created
// opens as a new store.
func TestOpenEmptyFile(t *testing.T) {
	path := tempStore(t)
	writeFile(t, path, nil)
	s := open(t, path)
	if last, err := s.LastIndex(); last != 0 || err != nil {
		t.Errorf("LastIndex = %d, %v; want 0", last, err)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}
