package gc

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/local"
	"github.com/tbfg/tbfg-node/store/nar"
)

// crashEnv names the directory a child process of TestKillDuringCollect
// collects in.
const crashEnv = "TBFG_GC_CRASH_DIR"

// journal is a replicated state that survives its process: every command
// is appended to a file and synced before it is applied, as Raft commits
// it to a log before Apply returns.
type journal struct {
	mu    sync.Mutex
	f     *os.File
	fsm   *scheduler.FSM
	index uint64
}

// openJournal replays the commands in file (up to a record cut short by a
// crash) into a new FSM and opens file for more.
func openJournal(file string) (*journal, error) {
	j := &journal{fsm: scheduler.NewFSM(slog.New(slog.DiscardHandler))}
	data, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for len(data) >= 4 {
		n := binary.BigEndian.Uint32(data)
		if uint32(len(data)-4) < n {
			break // the crash cut the last record short: never committed
		}
		if err := j.apply(data[4 : 4+n]); err != nil {
			return nil, err
		}
		data = data[4+n:]
	}
	j.f, err = os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	return j, err
}

func (j *journal) apply(cmd []byte) error {
	j.index++
	if err, ok := j.fsm.Apply(&raft.Log{Index: j.index, Type: raft.LogCommand, Data: cmd}).(error); ok {
		return err
	}
	return nil
}

// Apply implements scheduler.Applier.
func (j *journal) Apply(_ context.Context, cmd []byte) ([]byte, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	rec := binary.BigEndian.AppendUint32(nil, uint32(len(cmd)))
	if _, err := j.f.Write(append(rec, cmd...)); err != nil {
		return nil, err
	}
	if err := j.f.Sync(); err != nil {
		return nil, err
	}
	return nil, j.apply(cmd)
}

func (j *journal) mustApply(t *testing.T, c scheduler.Command) {
	t.Helper()
	if _, err := j.Apply(context.Background(), scheduler.Encode(c)); err != nil {
		t.Fatal(err)
	}
}

// TestKillDuringCollect kills a real process with SIGKILL in the middle of
// collections of a real store, again and again, and checks after each kill
// that the store opens cleanly, holds no leftover, and that every item the
// state (a journal synced before each apply) records as held by the node is
// valid with its files intact.
func TestKillDuringCollect(t *testing.T) {
	if dir := os.Getenv(crashEnv); dir != "" {
		crashChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("kills child processes; not with -short")
	}
	dir := t.TempDir()
	makeCrashStore(t, dir)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	for round := 0; ; round++ {
		killAfter := 1 + rng.IntN(20)
		if round == 8 {
			killAfter = 0 // let the last one finish
		}
		removed, finished := runCrashChild(t, dir, killAfter)
		t.Logf("round %d: killed after %d removals (%d seen), finished %v", round, killAfter, removed, finished)
		checkCrashStore(t, dir)
		if finished {
			if round < 2 {
				t.Fatalf("the collection finished in round %d: too few items to kill it midway", round)
			}
			return
		}
	}
}

// makeCrashStore fills dir/store with items, a third referring to an
// earlier one, records members me, x and y holding random sets of them in
// dir/journal, and lists their paths in dir/paths.
func makeCrashStore(t *testing.T, dir string) {
	st, err := local.Open(filepath.Join(dir, "store"), store.GuixDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	j, err := openJournal(filepath.Join(dir, "journal"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.f.Close()
	for _, m := range []string{"me", "x", "y"} {
		j.mustApply(t, &scheduler.NodeJoined{Time: time.Now(), Node: m, Key: "key-" + m, Systems: []string{"x86_64-linux"}, MaxBuilds: 1})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var paths []store.Path
	held := map[string][]scheduler.Item{}
	for i := range 250 {
		var refs []store.Path
		if i > 0 && i%3 == 0 {
			refs = append(refs, paths[rng.IntN(len(paths))])
		}
		body := strings.Repeat(fmt.Sprintf("item %d ", i), 2000)
		p, err := st.AddText(context.Background(), fmt.Sprintf("item-%d", i), []byte(body), refs)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
		info, _ := st.Query(p)
		it := scheduler.Item{Path: string(p), NarHash: info.NarHash(), NarSize: uint64(info.Nar.Size),
			Narinfo: "StorePath: " + string(p) + "\n", Signature: "sig"}
		for _, r := range info.References {
			it.References = append(it.References, string(r))
		}
		for _, m := range []string{"me", "x", "y"} {
			if rng.IntN(8) != 0 || m == "me" && rng.IntN(12) != 0 {
				held[m] = append(held[m], it)
			}
		}
	}
	for _, m := range []string{"me", "x", "y"} {
		j.mustApply(t, &scheduler.HolderAdded{Time: time.Now(), Node: m, Items: held[m]})
	}
	var list strings.Builder
	for _, p := range paths {
		list.WriteString(string(p) + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "paths"), []byte(list.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// runCrashChild runs a child that collects the store down to nothing it
// may spare, and kills it with SIGKILL once it reported killAfter removals
// (0: never). It returns how many removals it saw and whether the child
// finished by itself.
func runCrashChild(t *testing.T, dir string, killAfter int) (int, bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillDuringCollect$")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	removed, done := 0, false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		switch line := sc.Text(); {
		case strings.HasPrefix(line, "removed "):
			removed++
		case line == "done":
			done = true
		}
		if removed == killAfter {
			cmd.Process.Signal(syscall.SIGKILL)
			break
		}
	}
	io.Copy(io.Discard, out)
	err = cmd.Wait()
	if done && err != nil {
		t.Fatalf("child: %v", err)
	}
	return removed, done
}

// crashChild is the child process: it collects until nothing more may go,
// printing a line per item removed, then "done".
func crashChild(dir string) {
	fail := func(err error) { fmt.Fprintln(os.Stderr, "child:", err); os.Exit(2) }
	st, err := local.Open(filepath.Join(dir, "store"), store.GuixDir)
	if err != nil {
		fail(err)
	}
	j, err := openJournal(filepath.Join(dir, "journal"))
	if err != nil {
		fail(err)
	}
	c, err := New(Config{Node: "me", FSM: j.fsm, Applier: j, Store: st, Replicas: 1, StoreMax: 1,
		Grace: time.Nanosecond, Removed: func(r Removal) { fmt.Printf("removed %s\n", r.Path) }})
	if err != nil {
		fail(err)
	}
	for {
		rep, err := c.Collect(context.Background(), Request{})
		if err != nil {
			fail(err)
		}
		if len(rep.Removed) == 0 {
			break
		}
	}
	fmt.Println("done")
	os.Exit(0)
}

// checkCrashStore opens the store and checks it against the journal.
func checkCrashStore(t *testing.T, dir string) {
	t.Helper()
	real := filepath.Join(dir, "store")
	st, err := local.Open(real, store.GuixDir)
	if err != nil {
		t.Fatalf("open the store after a kill: %v", err)
	}
	defer st.Close()
	j, err := openJournal(filepath.Join(dir, "journal"))
	if err != nil {
		t.Fatal(err)
	}
	j.f.Close()
	valid, err := st.Valid()
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(real)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(valid) {
		t.Errorf("%d entries in the store directory for %d valid items (leftovers)", len(entries), len(valid))
	}
	all, err := os.ReadFile(filepath.Join(dir, "paths"))
	if err != nil {
		t.Fatal(err)
	}
	var held []string
	j.fsm.Read(func(s *scheduler.State) {
		for _, h := range s.Holdings("me", strings.Fields(string(all))) {
			if len(h.Holders) > 0 && contains(h.Holders, "me") {
				held = append(held, h.Path)
			}
		}
	})
	for _, p := range held {
		info, err := st.Query(store.Path(p))
		if err != nil {
			t.Errorf("recorded as held here but %v", err)
			continue
		}
		h := nar.NewHasher()
		if err := st.Dump(info.Path, h); err != nil || h.Sum() != info.Nar {
			t.Errorf("%s: recorded as held here, its files do not match its record: %v", p, err)
		}
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
