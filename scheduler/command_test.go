package scheduler

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
	"time"
)

// sampleCommands has one command of every type with every field set.
func sampleCommands() []Command {
	full := item(outPath("hello"))
	full.References = []string{outPath("glibc"), outPath("hello")}
	full.Deriver, full.System = drvPath("hello"), "x86_64-linux"
	d := drv("hello", "x86_64-linux", "glibc")
	d.Sources, d.Features, d.Force = []string{outPath("src")}, []string{"kvm"}, true
	return []Command{
		&Submit{Time: at(1), Submitter: "alice", Node: "n1", Priority: -3,
			Tags: []Tag{{"job", "hello"}}, Derivations: []Derivation{drv("glibc", "x86_64-linux"), d},
			Items: []Item{full}},
		&Allocate{Time: at(2), Allocations: []Allocation{{1, "n1"}, {2, "n2"}}},
		&Started{Time: at(3), Build: 7, Node: "n1"},
		&Succeeded{Time: at(4), Build: 7, Node: "n1", Outputs: []Item{full}},
		&Failed{Time: at(5), Build: 7, Node: "n1", Reason: ReasonTimeout, Message: "silent for 3600s"},
		&Cancel{Time: at(6), Builds: []BuildID{1, 2, 300}},
		&Retry{Time: at(7), Builds: []BuildID{5}},
		&NodeLost{Time: at(8), Node: "n2"},
		&HolderAdded{Time: at(9), Node: "n2", Items: []Item{full, item(outPath("x"))}},
		&HolderRemoved{Time: at(10), Node: "n2", Paths: []string{outPath("x")}},
		&NodeJoined{Time: at(11), Node: "n3", Key: "(public-key ...)", Systems: []string{"x86_64-linux", "i686-linux"},
			Features: []string{"kvm"}, MaxBuilds: 4},
		&NodeLeft{Time: at(12), Node: "n3"},
		&NodeJoined{Time: at(13), Node: "n4", Key: "(public-key ...)", Systems: []string{"aarch64-linux"},
			MaxBuilds: 1, NixKey: "n4-1:bQf0Sp8Q3aRd8sX7Qk0qS2cX8mGm0P1bYyC6nE0a8Yw="},
		&Compact{Time: at(14), Before: at(1), Max: CompactBatch},
	}
}

func TestCommandRoundTrip(t *testing.T) {
	for _, c := range sampleCommands() {
		t.Run(reflect.TypeOf(c).Elem().Name(), func(t *testing.T) {
			b := Encode(c)
			if CommandType(b[0]) != c.Type() || int(b[1]) != TypeFormat(c.Type()) {
				t.Fatalf("header %x", b[:2])
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, c)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	valid := Encode(&NodeLost{Time: at(1), Node: "n1"})
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"header only", []byte{byte(TypeNodeLost)}, ErrMalformed},
		{"unknown type", []byte{0x7f, 1}, ErrUnknownCommand},
		{"unknown ignorable type", []byte{0x7f | byte(IgnoreUnknown), 1}, ErrUnknownCommand},
		{"future version", []byte{byte(TypeNodeLost), FormatVersion + 1}, ErrVersion},
		{"known type, other format", []byte{byte(TypeNodeLost), 2}, ErrMalformed},
		{"truncated", valid[:len(valid)-1], ErrMalformed},
		{"trailing bytes", append(append([]byte{}, valid...), 0), ErrMalformed},
		{"huge length", []byte{byte(TypeCancel), 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}, ErrMalformed},
		{"bad boolean", badBool(), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode(tt.in); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// badBool is a Submit whose Force byte is 2.
func badBool() []byte {
	b := Encode(&Submit{Derivations: []Derivation{drv("a", "s")}})
	// Layout ends with: Force byte, then the item count 0.
	b[len(b)-2] = 2
	return b
}

func TestApplyUnknownCommand(t *testing.T) {
	s := NewState()
	if resp, err := s.Apply([]byte{0x7f | byte(IgnoreUnknown), 1, 42}); err != nil || resp != nil {
		t.Fatalf("ignorable unknown command: %v %v, want skipped", resp, err)
	}
	mustRejectBytes(t, s, []byte{0x7f, 1, 42}, ErrUnknownCommand)
}

func mustRejectBytes(t *testing.T, s *State, b []byte, want error) {
	t.Helper()
	before := encodeState(t, s)
	if _, err := s.Apply(b); !errors.Is(err, want) {
		t.Fatalf("got %v, want %v", err, want)
	}
	if string(before) != string(encodeState(t, s)) {
		t.Fatal("rejected command changed the state")
	}
}

// FuzzDecode checks that no input makes Decode panic and that whatever it
// accepts re-encodes to the same bytes: every command has one encoding.
func FuzzDecode(f *testing.F) {
	for _, c := range sampleCommands() {
		f.Add(Encode(c))
	}
	f.Add([]byte{0x7f | byte(IgnoreUnknown), 1})
	f.Add(mustHex(f, "0301860030023030")) // Started with an overlong build id
	f.Add(newerCommand())                 // a format this node does not read
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Decode(b)
		if err != nil {
			return
		}
		if again := Encode(c); !bytes.Equal(again, b) {
			t.Fatalf("Decode accepted %x, which encodes as %x", b, again)
		}
	})
}

// TestDecodeRefusesNonCanonical checks inputs that decode to a command
// with another encoding: they are refused, so that every command has one.
func TestDecodeRefusesNonCanonical(t *testing.T) {
	// Started at 48 ns, build 6, node "00".
	if got := hex.EncodeToString(Encode(&Started{Time: time.Unix(0, 48).UTC(), Build: 6, Node: "00"})); got != "03016006023030" {
		t.Fatalf("Started encodes as %s", got)
	}
	tests := []struct{ name, hex string }{
		{"overlong unsigned varint", "0301608600023030"},
		{"overlong signed varint", "0301e0800006023030"},
		{"overlong zero time", "0301800006023030"},
		{"overlong string length", "0301600682003030"},
		{"ignorable flag on a known type", "83016006023030"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustHex(t, tt.hex)
			if c, err := Decode(b); !errors.Is(err, ErrMalformed) {
				t.Errorf("Decode(%s) = %#v, %v; want ErrMalformed", tt.hex, c, err)
			}
		})
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestNodeJoinedEmptyNixKeyRefused checks that the optional last field has
// one encoding: present only when set.
func TestNodeJoinedEmptyNixKeyRefused(t *testing.T) {
	b := Encode(&NodeJoined{Time: at(1), Node: "n1", Key: "k", Systems: []string{"x86_64-linux"}, MaxBuilds: 1})
	if _, err := Decode(append(b, 0)); !errors.Is(err, ErrMalformed) {
		t.Errorf("NodeJoined with an empty Nix key field: %v, want ErrMalformed", err)
	}
}
