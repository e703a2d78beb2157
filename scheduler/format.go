package scheduler

import (
	"context"
	"fmt"
)

// The replicated format: one number for everything this package writes into
// Raft, commands and snapshots alike. It is the version byte of every
// command, so a node can tell that a log entry is newer than it reads before
// it looks at the command's type. Members gossip the formats they read and
// write, and a node writes a command of format N only once every member
// reads N (see FormatGate and DESIGN.md, "Upgrades").
//
// Format 1: the command layouts of the releases up to v0.3, and snapshots
// of layout 1 and 2. Format 2: the Compact command, and snapshots of layout 3
// (the applied index, compacted builds), written once a Compact was applied.
// Format 3: the TakeNext Succeeded (TypeSucceededTakeNext).
const (
	// FormatVersion is the highest format this binary reads and writes.
	FormatVersion = 3
	// MinFormat is the lowest format this binary still writes: it can join
	// a mesh only if every member reads at least this format. It stays at
	// most one below FormatVersion, so that two consecutive versions always
	// mesh; it stays lower while writing the older formats costs nothing
	// (every writer of a newer type checks the mesh's format anyway).
	MinFormat = 1
)

// commandFormat is the format that introduced command type t: the version
// byte its commands are written with: format 1 but for the types listed.
// A type added later returns its format here, and its writers propose it
// only when the mesh reads that format; a later format that changes the body
// of an existing type must give decodeBody the version byte instead.
func commandFormat(t CommandType) byte {
	switch t {
	case TypeCompact:
		return 2
	case TypeSucceededTakeNext:
		return 3
	default:
		return 1
	}
}

// TypeFormat is the replicated format that introduced command type t: a
// writer proposes a command of type t only when the mesh reads it.
func TypeFormat(t CommandType) int { return int(commandFormat(t)) }

// CommandFormat returns the format of an encoded command (its version
// byte), or 0 if cmd is too short to have one.
func CommandFormat(cmd []byte) int {
	if len(cmd) < 2 {
		return 0
	}
	return int(cmd[1])
}

// TooNewError is the error of an FSM that met a log entry or a snapshot of
// a format this binary cannot read. The FSM then stops applying anything
// (see FSM.Halted): applying the rest of the log without that entry would
// silently give this node another state than the others'.
type TooNewError struct {
	// Index is the Raft index of the entry; 0 for a snapshot.
	Index uint64
	// Format is the entry's command format; 0 for a snapshot.
	Format int
	// Err is what decoding said (it wraps ErrVersion or ErrUnknownCommand).
	Err error
}

func (e *TooNewError) Error() string {
	if e.Index == 0 {
		return fmt.Sprintf("the raft snapshot is newer than this tbfg-node reads (replicated formats up to %d): %v; upgrade this node",
			FormatVersion, e.Err)
	}
	if e.Format > FormatVersion {
		return fmt.Sprintf("raft log entry %d has command format %d; this tbfg-node reads formats up to %d: upgrade it to a version that reads format %d",
			e.Index, e.Format, FormatVersion, e.Format)
	}
	return fmt.Sprintf("raft log entry %d cannot be read by this tbfg-node (formats up to %d): %v; upgrade it",
		e.Index, FormatVersion, e.Err)
}

// Unwrap returns the decoding error.
func (e *TooNewError) Unwrap() error { return e.Err }

// FormatGate is an Applier that refuses, with ErrFormatGate, a command of a
// format some member of the mesh cannot read yet: a safety net behind the
// writers, which choose what to write by the mesh's format.
type FormatGate struct {
	// Applier commits the commands that pass.
	Applier Applier
	// MeshFormat is the highest format every member reads.
	MeshFormat func() int
}

// Apply implements Applier.
func (g FormatGate) Apply(ctx context.Context, cmd []byte) ([]byte, error) {
	if f, mesh := CommandFormat(cmd), g.MeshFormat(); f > mesh {
		return nil, fmt.Errorf("%w: command format %d, and some member reads formats up to %d", ErrFormatGate, f, mesh)
	}
	return g.Applier.Apply(ctx, cmd)
}
