package scheduler

import (
	"errors"
	"strings"
	"time"
)

// BuildID names a build. It is the build's position in submission order,
// starting at 1, so every node assigns the same id without coordination.
type BuildID uint64

// BuildState is where a build is in its life.
type BuildState uint8

// The build states. Numbers are part of the snapshot format.
const (
	BuildQueued           BuildState = 1 + iota // waiting for inputs or a node
	BuildAllocated                              // given to a node, not started yet
	BuildRunning                                // the node is building it
	BuildSucceeded                              // built; outputs available
	BuildFailed                                 // failed; not retried automatically
	BuildCanceled                               // canceled by a user
	BuildFailedDependency                       // an input failed or was canceled
	BuildBlocked                                // no member builds its system
	BuildAvailable                              // outputs were already available when submitted; not built
)

var stateNames = [...]string{"unknown", "queued", "allocated", "running", "succeeded", "failed",
	"canceled", "failed-dependency", "blocked", "available"}

// String is the state's name as status pages and the CLI show it.
func (s BuildState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return stateNames[0]
}

// Done reports whether the state is final until someone resubmits or retries.
func (s BuildState) Done() bool {
	return s == BuildSucceeded || s == BuildFailed || s == BuildCanceled ||
		s == BuildFailedDependency || s == BuildAvailable
}

// Reason says why a build failed.
type Reason uint8

// The failure reasons. Transient ones re-queue the build (bounded by
// MaxAttempts); the others are remembered and not retried automatically.
const (
	ReasonNone           Reason = iota
	ReasonBuildError            // the builder failed
	ReasonTimeout               // the build exceeded its time limits
	ReasonMissingInput          // an input could not be fetched (transient)
	ReasonAgentLost             // the building node went away (transient)
	ReasonInfrastructure        // the node had a local problem (transient)
	reasonCount
)

var reasonNames = [...]string{"", "build-error", "timeout", "missing-input", "agent-lost", "infrastructure"}

// String is the reason's name, e.g. "build-error".
func (r Reason) String() string {
	if r < reasonCount {
		return reasonNames[r]
	}
	return "unknown"
}

// Transient reports whether a failure for this reason is retried automatically.
func (r Reason) Transient() bool {
	return r == ReasonMissingInput || r == ReasonAgentLost || r == ReasonInfrastructure
}

// Retry policy for transient failures. It is part of Apply, so every node must
// run the same values.
const (
	// MaxAttempts is how many times a build is allocated before a transient
	// failure becomes final.
	MaxAttempts = 5
	// BackoffBase is the wait before the second attempt; it doubles per
	// attempt up to BackoffMax. NodeLost re-queues without waiting.
	BackoffBase = 15 * time.Second
	// BackoffMax caps the wait between attempts.
	BackoffMax = 10 * time.Minute
)

// Errors returned by Apply (wrapped with the offending build, node or path) and
// by Decode. They travel back to the node that submitted the command.
var (
	// ErrMalformed means a command or snapshot could not be decoded.
	ErrMalformed = errors.New("malformed encoding")
	// ErrUnknownCommand means a command type this node does not know.
	ErrUnknownCommand = errors.New("unknown command type")
	// ErrVersion means a command or snapshot layout this node does not know.
	ErrVersion = errors.New("unsupported version")
	// ErrFormatGate means a command of a format some member cannot read
	// yet (FormatGate).
	ErrFormatGate = errors.New("command format not yet readable by every member")
	// ErrInvalid means a command is well-formed but makes no sense (empty
	// path, duplicate derivation, unknown output name, ...).
	ErrInvalid = errors.New("invalid command")
	// ErrUnknownBuild means a build id that does not exist.
	ErrUnknownBuild = errors.New("unknown build")
	// ErrUnknownDerivation means an input derivation neither known nor
	// submitted earlier in the same command.
	ErrUnknownDerivation = errors.New("unknown input derivation")
	// ErrUnknownNode means a node that never joined.
	ErrUnknownNode = errors.New("unknown node")
	// ErrWrongState means a build is not in a state the command applies to,
	// e.g. an allocation of a build that is no longer queued.
	ErrWrongState = errors.New("build in wrong state")
	// ErrIneligible means an allocation to a node that cannot take the build.
	ErrIneligible = errors.New("node not eligible")
	// ErrInputsMissing means an allocation of a build whose inputs are not
	// all available.
	ErrInputsMissing = errors.New("inputs not available")
	// ErrHashMismatch means a holder claims a store path with a NAR hash other
	// than the one on record.
	ErrHashMismatch = errors.New("NAR hash differs from the recorded one")
	// ErrCycle means a submitted graph whose derivations depend on each other
	// in a cycle.
	ErrCycle = errors.New("dependency cycle")
)

// noProducer marks a path no known derivation produces (an input source, a
// .drv file).
const noProducer = -1

// build is one derivation's record. Store paths are indices into State.paths,
// strings into State.names, so a build costs little beyond its own .drv path.
type build struct {
	drv        string
	outputs    []outRef // in the order submitted
	inputs     []uint32 // paths: outputs of input derivations, then sources
	dependents []uint32 // builds with an input this build produces, ascending
	submitted  int64    // Unix ns, from the command
	allocated  int64
	started    int64
	finished   int64
	notBefore  int64 // back-off after a transient failure
	priority   int32
	submission uint32 // index into State.submissions (submitter, tags)
	cause      int32  // failed-dependency: the failed or canceled build; else -1
	system     uint32 // index into names
	features   uint32 // index into featureSets
	node       uint16 // allocated node index + 1; 0 when none
	last       uint16 // node index + 1 of the latest allocation, kept after the build ends; 0 if never allocated
	state      BuildState
	reason     Reason
	attempt    uint8 // how many times it was allocated since last (re)queued by a user
	message    string
}

// pathEntry is one store path the state knows: an output, a source or any item
// some node holds.
type pathEntry struct {
	path     string
	info     *Item    // narinfo fields, nil while never held
	holders  []uint16 // node indices, ascending
	producer int32    // build index or noProducer
}

// outRef is one output of a build: its path and name. The name sits next to
// the path so that resolving "input X, output lib" touches one cache line.
type outRef struct {
	path uint32 // index into State.paths
	name uint32 // index into State.names
}

// memberStatus is a node's membership state.
type memberStatus uint8

const (
	memberActive memberStatus = 1 + iota
	memberLost                // stopped answering; may come back with NodeJoined
	memberLeft                // left the mesh; its items were dropped
)

var memberNames = [...]string{"", "active", "lost", "left"}

// member is a node that joined the mesh.
type member struct {
	id        string
	key       string
	nixKey    string
	systems   []uint32 // name indices, ascending
	features  []uint32 // name indices, ascending
	maxBuilds int
	active    int // builds allocated or running on it
	status    memberStatus
	joined    int64
}

// submission is who submitted a group of builds and with which tags.
type submission struct {
	submitter string
	tags      []Tag
}

// State is the replicated build queue. Apply changes it; everything else only
// reads it. It is not safe for concurrent use: FSM adds the locking.
type State struct {
	builds      []*build
	byDrv       map[string]uint32
	paths       []pathEntry
	byPath      map[string]uint32
	byHash      map[string]uint32 // hash part of held paths, for narinfo lookups
	nodes       []*member
	byNode      map[string]uint16
	names       []string
	byName      map[string]uint32
	featureSets [][]uint32
	byFeatures  map[string]uint32
	submissions []submission
	failed      map[uint32]uint32 // failed-output memory: path → build that failed
	last        int64             // newest command time applied; times never go back
	applied     uint64            // Raft index of the last applied command, set by FSM; in snapshots from version 3
	format      byte              // highest replicated format a command applied so far had; picks the snapshot layout

	fx effects // what the command being applied changed, for notifications
	ix index   // derived read index for status pages (index.go); not in snapshots
}

// effects lists what one command changed, for subscribers.
type effects struct {
	nodes []uint16 // nodes whose allocations changed
	paths []uint32 // paths that became available
}

// NewState returns an empty state.
func NewState() *State {
	s := &State{
		byDrv:      map[string]uint32{},
		byPath:     map[string]uint32{},
		byHash:     map[string]uint32{},
		byNode:     map[string]uint16{},
		byName:     map[string]uint32{},
		byFeatures: map[string]uint32{},
		failed:     map[uint32]uint32{},
	}
	s.featureSet(nil) // index 0 is "no features"
	return s
}

// name interns a string, returning its index.
func (s *State) name(v string) uint32 {
	if i, ok := s.byName[v]; ok {
		return i
	}
	i := uint32(len(s.names))
	v = strings.Clone(v) // do not keep the whole command alive
	s.names = append(s.names, v)
	s.byName[v] = i
	return i
}

// nameSet interns strings and returns their indices sorted and deduplicated.
func (s *State) nameSet(vs []string) []uint32 {
	if len(vs) == 0 {
		return nil
	}
	out := make([]uint32, 0, len(vs))
	for _, v := range vs {
		out = insertSorted(out, s.name(v))
	}
	return out
}

// featureSet interns a set of required features.
func (s *State) featureSet(fs []string) uint32 {
	set := s.nameSet(fs)
	var key strings.Builder
	for _, f := range set {
		key.WriteString(s.names[f])
		key.WriteByte(0)
	}
	if i, ok := s.byFeatures[key.String()]; ok {
		return i
	}
	i := uint32(len(s.featureSets))
	s.featureSets = append(s.featureSets, set)
	s.byFeatures[key.String()] = i
	return i
}

// path returns the index of a store path, adding it if new.
func (s *State) path(p string) uint32 {
	if i, ok := s.byPath[p]; ok {
		return i
	}
	i := uint32(len(s.paths))
	p = strings.Clone(p) // do not keep the whole command alive
	s.paths = append(s.paths, pathEntry{path: p, producer: noProducer})
	s.byPath[p] = i
	return i
}

// available reports whether a path is held by a node that is not lost or gone.
func (s *State) available(p uint32) bool {
	for _, h := range s.paths[p].holders {
		if s.nodes[h].status == memberActive {
			return true
		}
	}
	return false
}

// inputsAvailable reports whether every input of b is available.
func (s *State) inputsAvailable(b *build) bool {
	for _, p := range b.inputs {
		if !s.available(p) {
			return false
		}
	}
	return true
}

// outputsAvailable reports whether every output of b is available.
func (s *State) outputsAvailable(b *build) bool {
	for _, o := range b.outputs {
		if !s.available(o.path) {
			return false
		}
	}
	return true
}

// served reports whether an active member builds for system.
func (s *State) served(system uint32) bool {
	for _, n := range s.nodes {
		if n.status == memberActive && containsSorted(n.systems, system) {
			return true
		}
	}
	return false
}

// buildIndex resolves a build id.
func (s *State) buildIndex(id BuildID) (uint32, bool) {
	if id == 0 || id > BuildID(len(s.builds)) || s.builds[id-1] == nil {
		return 0, false // unknown or compacted
	}
	return uint32(id - 1), true
}

// nodeIndex resolves a node id.
func (s *State) nodeIndex(id string) (uint16, bool) {
	i, ok := s.byNode[id]
	return i, ok
}

// touchNode records that a node's allocations changed.
func (s *State) touchNode(n uint16) {
	for _, x := range s.fx.nodes {
		if x == n {
			return
		}
	}
	s.fx.nodes = append(s.fx.nodes, n)
}

// insertSorted adds v to an ascending slice unless present.
func insertSorted[T uint16 | uint32](xs []T, v T) []T {
	i := 0
	for i < len(xs) && xs[i] < v {
		i++
	}
	if i < len(xs) && xs[i] == v {
		return xs
	}
	xs = append(xs, 0)
	copy(xs[i+1:], xs[i:])
	xs[i] = v
	return xs
}

// removeSorted removes v from an ascending slice if present.
func removeSorted[T uint16 | uint32](xs []T, v T) []T {
	for i, x := range xs {
		if x == v {
			return append(xs[:i], xs[i+1:]...)
		}
	}
	return xs
}

// containsSorted reports whether an ascending slice holds v.
func containsSorted[T uint16 | uint32](xs []T, v T) bool {
	for _, x := range xs {
		if x >= v {
			return x == v
		}
	}
	return false
}

// subsetSorted reports whether every element of a is in b (both ascending).
func subsetSorted(a, b []uint32) bool {
	for _, v := range a {
		if !containsSorted(b, v) {
			return false
		}
	}
	return true
}

// hashPart returns the hash part of a store path: the base name up to its
// first dash.
func hashPart(path string) string {
	base := path[strings.LastIndexByte(path, '/')+1:]
	if i := strings.IndexByte(base, '-'); i >= 0 {
		return base[:i]
	}
	return base
}

// Decoded commands' strings share the command's buffer; what the state keeps
// is copied so that the buffer can be freed.

func cloneTags(tags []Tag) []Tag {
	if len(tags) == 0 {
		return nil
	}
	out := make([]Tag, len(tags))
	for i, t := range tags {
		out[i] = Tag{Key: strings.Clone(t.Key), Value: strings.Clone(t.Value)}
	}
	return out
}

func cloneItem(it Item) *Item {
	c := Item{Path: strings.Clone(it.Path), NarHash: strings.Clone(it.NarHash), NarSize: it.NarSize,
		Deriver: strings.Clone(it.Deriver), System: strings.Clone(it.System),
		Narinfo: strings.Clone(it.Narinfo), Signature: strings.Clone(it.Signature)}
	if len(it.References) > 0 {
		c.References = make([]string, len(it.References))
		for i, r := range it.References {
			c.References[i] = strings.Clone(r)
		}
	}
	return &c
}
