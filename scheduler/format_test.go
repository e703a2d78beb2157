package scheduler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// newerCommand is a command as a binary of the next format would write it:
// an existing type with a body this binary has never seen.
func newerCommand() []byte {
	b := Encode(&NodeLost{Time: at(1), Node: "n1"})
	b[1] = FormatVersion + 1
	return append(b, 0x2a)
}

func TestDecodeNewerFormat(t *testing.T) {
	for name, b := range map[string][]byte{
		"known type":   newerCommand(),
		"unknown type": {0x7e, FormatVersion + 1, 1, 2, 3},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Decode(b)
			if !errors.Is(err, ErrVersion) {
				t.Fatalf("Decode: %v; want ErrVersion", err)
			}
			want := fmt.Sprintf("command format %d", FormatVersion+1)
			if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), fmt.Sprintf("reads formats up to %d", FormatVersion)) {
				t.Errorf("error %q does not say %q and what this node reads", err, want)
			}
		})
	}
}

func TestDecodeRefusesWrongFormatOfKnownType(t *testing.T) {
	b := Encode(&NodeLost{Time: at(1), Node: "n1"})
	b[1] = 0
	if _, err := Decode(b); !errors.Is(err, ErrMalformed) {
		t.Errorf("NodeLost of format 0: %v; want ErrMalformed", err)
	}
}

// TestFSMHaltsOnNewerCommand checks that an FSM meeting a command of a newer
// format refuses it with a message naming the entry and the formats, and
// then applies nothing more, even commands it could read.
func TestFSMHaltsOnNewerCommand(t *testing.T) {
	f := NewFSM(nil)
	fsmApply(f, joined("n1", 2, x86))
	before := encodeState(t, f.state)
	res := f.Apply(&raft.Log{Index: 123, Type: raft.LogCommand, Data: newerCommand()})
	err, _ := res.(error)
	var tn *TooNewError
	if !errors.As(err, &tn) || tn.Index != 123 || tn.Format != FormatVersion+1 || !errors.Is(err, ErrVersion) {
		t.Fatalf("Apply of a newer command: %v; want a TooNewError for entry 123", res)
	}
	want := fmt.Sprintf("raft log entry 123 has command format %d; this tbfg-node reads formats up to %d: upgrade it",
		FormatVersion+1, FormatVersion)
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q\nwant it to start %q", err, want)
	}
	select {
	case <-f.Halted():
	default:
		t.Fatal("Halted not closed")
	}
	if res := f.Apply(&raft.Log{Index: 124, Type: raft.LogCommand, Data: Encode(joined("n2", 1, x86))}); res != error(tn) {
		t.Errorf("Apply after the halt: %v; want the halt's error", res)
	}
	if !bytes.Equal(before, encodeState(t, f.state)) || f.Index() != 0 || f.Err() != error(tn) {
		t.Error("the halted FSM changed its state or index")
	}
}

// TestFSMHaltsOnUnknownType: an unknown type without IgnoreUnknown halts
// too; with it, the entry is skipped and the FSM carries on.
func TestFSMHaltsOnUnknownType(t *testing.T) {
	f := NewFSM(nil)
	if res := f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: []byte{0x7e | byte(IgnoreUnknown), 1}}); res != nil {
		t.Fatalf("ignorable unknown command: %v", res)
	}
	res := f.Apply(&raft.Log{Index: 2, Type: raft.LogCommand, Data: []byte{0x7e, 1}})
	if err, _ := res.(error); !errors.Is(err, ErrUnknownCommand) || f.Err() == nil {
		t.Fatalf("unknown command: %v, halted with %v", res, f.Err())
	}
	if !strings.Contains(f.Err().Error(), "raft log entry 2 cannot be read") {
		t.Errorf("error %q does not name the entry", f.Err())
	}
}

// TestFSMKeepsApplyingAfterInvalidCommand: an invalid command of a format
// this node reads is rejected on every node alike, so it does not halt.
func TestFSMKeepsApplyingAfterInvalidCommand(t *testing.T) {
	f := NewFSM(nil)
	fsmApply(f, &Started{Build: 9, Node: "nobody"})
	if f.Err() != nil {
		t.Fatalf("halted on a rejected command: %v", f.Err())
	}
	if res := fsmApply(f, joined("n1", 2, x86)); res != nil {
		t.Fatalf("apply after a rejected command: %v", res)
	}
}

func TestFSMRefusesNewerSnapshot(t *testing.T) {
	f := NewFSM(nil)
	data := encodeState(t, NewState())
	data[len(snapshotMagic)] = snapshotVersion + 1
	err := f.Restore(io.NopCloser(bytes.NewReader(data)))
	var tn *TooNewError
	if !errors.As(err, &tn) || !errors.Is(err, ErrVersion) || tn.Index != 0 {
		t.Fatalf("Restore of a newer snapshot: %v; want a TooNewError", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "the raft snapshot is newer than this tbfg-node reads") ||
		!strings.Contains(msg, fmt.Sprintf("snapshot version %d", snapshotVersion+1)) {
		t.Errorf("error %q does not say what is newer", msg)
	}
	if f.Err() == nil {
		t.Error("not halted")
	}
}

func TestFormatGate(t *testing.T) {
	f := NewFSM(nil)
	mesh := FormatVersion
	g := FormatGate{Applier: &LocalApplier{FSM: f}, MeshFormat: func() int { return mesh }}
	if _, err := g.Apply(context.Background(), Encode(joined("n1", 1, x86))); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Apply(context.Background(), newerCommand()); !errors.Is(err, ErrFormatGate) {
		t.Fatalf("newer command through the gate: %v; want ErrFormatGate", err)
	}
	if f.Err() != nil {
		t.Fatalf("the gate let the newer command through: %v", f.Err())
	}
}
