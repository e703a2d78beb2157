package scheduler

import (
	"fmt"
	"time"
)

// CommandType is the first byte of every encoded command. Its high bit is
// IgnoreUnknown; the other seven bits name the command.
type CommandType uint8

// The command types. Numbers are part of the replicated log format: never
// reuse or renumber one.
const (
	TypeSubmit CommandType = 1 + iota
	TypeAllocate
	TypeStarted
	TypeSucceeded
	TypeFailed
	TypeCancel
	TypeRetry
	TypeNodeLost
	TypeHolderAdded
	TypeHolderRemoved
	TypeNodeJoined
	TypeNodeLeft
	// TypeCompact needs the replicated format that introduced it: a member
	// that does not know it must not skip it (its state would keep builds
	// the others dropped), so it is not ignorable, and the leader proposes
	// it only once every member understands it.
	TypeCompact
	// TypeSucceededTakeNext is a Succeeded whose node takes a dependent the
	// success makes ready into the slot it frees (Succeeded.TakeNext). Like
	// TypeCompact it needs its format, and is never ignorable: a member that
	// skipped it would not start the dependent.
	TypeSucceededTakeNext
)

// IgnoreUnknown is or-ed into the type byte of a command that older nodes may
// safely skip if they do not know its type (as in nomad's FSM). Without it, an
// unknown type is an error, so a node too old to understand the log says so.
const IgnoreUnknown CommandType = 0x80

// Command is one change to the replicated state. Encode turns it into the bytes
// given to Raft; Apply decodes and applies them on every node.
type Command interface {
	// Type is the command's type byte, without the IgnoreUnknown flag.
	Type() CommandType
	encodeBody(e *encoder)
	decodeBody(d *decoder)
}

// Output is one named output of a derivation.
type Output struct {
	Name string // e.g. "out", "lib"
	Path string // its store path
}

// Input is an input derivation and the outputs of it a derivation uses.
type Input struct {
	Drv     string
	Outputs []string
}

// Derivation is one node of a submitted graph: the parts of a .drv the
// scheduler needs. Inputs must name derivations already known to the state or
// listed earlier in the same Submit.
type Derivation struct {
	Path     string
	System   string
	Outputs  []Output
	Inputs   []Input
	Sources  []string // input sources (store paths that are not derivation outputs)
	Features []string // required system features, e.g. "kvm"
	// Force builds it even if its outputs are available or known to fail.
	Force bool
}

// Item is a store item held by a node, with the narinfo fields any node needs
// to serve it as a substitute.
type Item struct {
	Path       string
	NarHash    string // "sha256:<nix-base32>"
	NarSize    uint64
	References []string
	Deriver    string
	System     string
	// Narinfo is the signed narinfo text as its first holder wrote it, so every
	// node can serve it verbatim.
	Narinfo   string
	Signature string
}

// Tag is a free-form key/value label on submitted builds.
type Tag struct{ Key, Value string }

// Allocation assigns one queued build to one node.
type Allocation struct {
	Build BuildID
	Node  string
}

// Submit adds a derivation graph, inputs first, in one command. Large graphs
// are split with SplitSubmit. Its response lists the build id of each
// derivation, in order (see DecodeSubmitResponse).
type Submit struct {
	Time        time.Time
	Submitter   string // who asked, for status pages
	Node        string // the node holding Items (usually the submitting node)
	Priority    int32
	Tags        []Tag
	Derivations []Derivation
	Items       []Item // e.g. the .drv files and sources Node holds
}

// Allocate assigns builds to nodes; the leader's allocation loop proposes it
// and Apply re-checks every allocation, rejecting the whole command if one is
// no longer valid.
type Allocate struct {
	Time        time.Time
	Allocations []Allocation
}

// Started says a node began an allocated build.
type Started struct {
	Time  time.Time
	Build BuildID
	Node  string
}

// Succeeded says a node built a build; Outputs are its outputs' narinfos.
//
// With TakeNext, the node also takes, into the slot the build frees, the
// first of the build's dependents that the success makes ready and that the
// node may build, unless a ready build of higher priority waits: Apply
// marks it running on the node at once, so a chain of dependent builds
// continues where its inputs are without a round of the leader's
// allocation loop, an Allocate commit or a Started commit in between. The
// node asks for it only when it takes new builds (see DESIGN.md, "Taking
// the next build"). A TakeNext Succeeded is of type TypeSucceededTakeNext.
type Succeeded struct {
	Time     time.Time
	Build    BuildID
	Node     string
	Outputs  []Item
	TakeNext bool
}

// Failed says a build failed on a node, and why.
type Failed struct {
	Time    time.Time
	Build   BuildID
	Node    string
	Reason  Reason
	Message string
}

// Cancel cancels builds that have not finished.
type Cancel struct {
	Time   time.Time
	Builds []BuildID
}

// Retry re-queues failed or canceled builds, forgetting their failure.
type Retry struct {
	Time   time.Time
	Builds []BuildID
}

// NodeLost says a member stopped answering: its builds are re-queued.
type NodeLost struct {
	Time time.Time
	Node string
}

// HolderAdded says Node now holds these store items.
type HolderAdded struct {
	Time  time.Time
	Node  string
	Items []Item
}

// HolderRemoved says Node no longer holds these store paths.
type HolderRemoved struct {
	Time  time.Time
	Node  string
	Paths []string
}

// NodeJoined adds a member or updates its configuration.
type NodeJoined struct {
	Time      time.Time
	Node      string // libp2p peer ID
	Key       string // signing public key, opaque
	Systems   []string
	Features  []string
	MaxBuilds int // parallel builds it accepts; at least 1
	// NixKey is the node's Nix public key, name:base64, for Nix clients'
	// trusted-public-keys; "" if the node has none. Encoded as an optional
	// last field, so NodeJoined commands written before it decode unchanged.
	NixKey string
}

// NodeLeft removes a member: its builds are re-queued and its items dropped.
type NodeLeft struct {
	Time time.Time
	Node string
}

// Compact drops from the state up to Max finished builds that ended before
// Before, keeping the availability of their outputs (items, holders,
// narinfo). Apply chooses the builds, so every node drops the same ones; a
// build stays while a build that is not dropped refers to it. The leader's
// compaction loop proposes it. Its response is the number of builds
// dropped (see DecodeCompactResponse).
//
// Compact needs the replicated format that introduced TypeCompact: it is
// never marked IgnoreUnknown.
type Compact struct {
	Time   time.Time
	Before time.Time
	Max    int
}

// Type implements Command.
func (*Submit) Type() CommandType { return TypeSubmit }

// Type implements Command.
func (*Allocate) Type() CommandType { return TypeAllocate }

// Type implements Command.
func (*Started) Type() CommandType { return TypeStarted }

// Type implements Command.
func (c *Succeeded) Type() CommandType {
	if c.TakeNext {
		return TypeSucceededTakeNext
	}
	return TypeSucceeded
}

// Type implements Command.
func (*Failed) Type() CommandType { return TypeFailed }

// Type implements Command.
func (*Cancel) Type() CommandType { return TypeCancel }

// Type implements Command.
func (*Retry) Type() CommandType { return TypeRetry }

// Type implements Command.
func (*NodeLost) Type() CommandType { return TypeNodeLost }

// Type implements Command.
func (*HolderAdded) Type() CommandType { return TypeHolderAdded }

// Type implements Command.
func (*HolderRemoved) Type() CommandType { return TypeHolderRemoved }

// Type implements Command.
func (*NodeJoined) Type() CommandType { return TypeNodeJoined }

// Type implements Command.
func (*NodeLeft) Type() CommandType { return TypeNodeLeft }

// Type implements Command.
func (*Compact) Type() CommandType { return TypeCompact }

// newCommand returns an empty command of type t, or nil if t is unknown.
func newCommand(t CommandType) Command {
	switch t {
	case TypeSubmit:
		return &Submit{}
	case TypeAllocate:
		return &Allocate{}
	case TypeStarted:
		return &Started{}
	case TypeSucceeded:
		return &Succeeded{}
	case TypeFailed:
		return &Failed{}
	case TypeCancel:
		return &Cancel{}
	case TypeRetry:
		return &Retry{}
	case TypeNodeLost:
		return &NodeLost{}
	case TypeHolderAdded:
		return &HolderAdded{}
	case TypeHolderRemoved:
		return &HolderRemoved{}
	case TypeNodeJoined:
		return &NodeJoined{}
	case TypeNodeLeft:
		return &NodeLeft{}
	case TypeCompact:
		return &Compact{}
	case TypeSucceededTakeNext:
		return &Succeeded{TakeNext: true}
	}
	return nil
}

// Encode returns the bytes to give to Raft for c.
func Encode(c Command) []byte {
	e := &encoder{buf: make([]byte, 0, 64)}
	e.byte(byte(c.Type()))
	e.byte(commandFormat(c.Type()))
	c.encodeBody(e)
	return e.buf
}

// Decode parses an encoded command. A command of a format newer than
// FormatVersion yields ErrVersion, whatever its type; an unknown type yields
// ErrUnknownCommand (check Ignorable to see whether either may be skipped);
// any other defect yields ErrMalformed with the byte offset. Only the bytes
// Encode writes are accepted (shortest varints, no IgnoreUnknown flag on a
// known type, the type's own format), so every command has one encoding.
func Decode(b []byte) (Command, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: %d bytes, need at least 2", ErrMalformed, len(b))
	}
	t := CommandType(b[0]) &^ IgnoreUnknown
	if b[1] > FormatVersion {
		return nil, fmt.Errorf("%w: command format %d (type %d); this tbfg-node reads formats up to %d",
			ErrVersion, b[1], t, FormatVersion)
	}
	c := newCommand(t)
	if c == nil {
		return nil, fmt.Errorf("%w: type %d", ErrUnknownCommand, t)
	}
	if b[0] != byte(t) { // no command this node knows carries the flag
		return nil, fmt.Errorf("%w: command type %d with the IgnoreUnknown flag", ErrMalformed, t)
	}
	if want := commandFormat(t); b[1] != want {
		return nil, fmt.Errorf("%w: command type %d with format %d, written as %d", ErrMalformed, t, b[1], want)
	}
	d := newDecoder(b, 2)
	c.decodeBody(d)
	if err := d.end(); err != nil {
		return nil, fmt.Errorf("decode command type %d: %w", t, err)
	}
	return c, nil
}

// Ignorable reports whether an encoded command carries the IgnoreUnknown flag.
func Ignorable(b []byte) bool {
	return len(b) > 0 && CommandType(b[0])&IgnoreUnknown != 0
}
