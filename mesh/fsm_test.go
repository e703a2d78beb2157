package mesh

import (
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/raft"
)

// logFSM is the test state machine: an append-only log of commands. A
// command starting with "fail" returns an error instead.
type logFSM struct {
	mu    sync.Mutex
	log   []string
	index map[string]uint64 // Raft index each command was applied at
}

func (f *logFSM) Apply(l *raft.Log) any {
	cmd := string(l.Data)
	if strings.HasPrefix(cmd, "fail") {
		return errors.New("refused " + cmd)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, cmd)
	if f.index == nil {
		f.index = map[string]uint64{}
	}
	f.index[cmd] = l.Index
	return []byte(strconv.Itoa(len(f.log)))
}

func (f *logFSM) entries() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.log)
}

// indexOf returns the Raft index cmd was applied at, 0 if not (yet).
func (f *logFSM) indexOf(cmd string) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.index[cmd]
}

func (f *logFSM) Snapshot() (raft.FSMSnapshot, error) {
	return logSnapshot(f.entries()), nil
}

// Restore resets the log; an empty snapshot means the initial state.
func (f *logFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	var entries []string
	if len(data) > 0 {
		if err := json.Unmarshal(data, &entries); err != nil {
			return err
		}
	}
	f.mu.Lock()
	f.log = entries
	f.mu.Unlock()
	return nil
}

type logSnapshot []string

func (s logSnapshot) Persist(sink raft.SnapshotSink) error {
	data, err := json.Marshal([]string(s))
	if err != nil {
		sink.Cancel()
		return err
	}
	if _, err := sink.Write(data); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s logSnapshot) Release() {}
