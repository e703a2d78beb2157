package mesh

import (
	"bytes"
	"math"
	"testing"
)

const testPeer = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"

// FuzzDecodeRequest feeds arbitrary bytes, as a peer could send them on
// /tbfg/rpc/1, to the request decoder: it must return a request that passes
// its own checks or an error, never panic.
func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"kind":"hello"}`))
	f.Add([]byte(`{"kind":"apply","cmd":"aGVsbG8="}`))
	f.Add([]byte(`{"kind":"join","join":{"id":"` + testPeer + `","addrs":["/ip4/127.0.0.1/tcp/1"],"has_state":true}}`))
	f.Add([]byte(`{"kind":"remove","id":"nope"}`))
	f.Add([]byte(`{"kind":"apply","hops":9}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := decodeRequest(data)
		if err != nil {
			return
		}
		if req.Hops < 0 || req.Hops > maxHops || req.Kind == kindJoin && req.Join == nil {
			t.Fatalf("accepted invalid request %+v", req)
		}
	})
}

// FuzzDecodeEnvelope feeds arbitrary gossip payloads to the status decoder.
func FuzzDecodeEnvelope(f *testing.F) {
	f.Add([]byte(`{"id":"` + testPeer + `","time":1,"status":{"systems":["x86_64-linux"],"cores":4,"load1":0.5}}`))
	f.Add([]byte(`{"id":"` + testPeer + `","status":{"load1":-1}}`))
	f.Add([]byte(`{"id":"other"}`))
	f.Add([]byte(`{"id":"` + testPeer + `","status":{"version":"v0.4.0","format":2,"min_format":1}}`))
	f.Add(bytes.Repeat([]byte("a"), maxStatusSize+1))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := decodeEnvelope(data, testPeer)
		if err != nil {
			return
		}
		if e.ID != testPeer || e.Status.check() != nil || len(e.Addrs) > maxAddrs {
			t.Fatalf("accepted invalid status %+v", e)
		}
	})
}

// FuzzReadFrame checks that the frame reader bounds what it allocates and
// fails cleanly on short input.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := readFrame(bytes.NewReader(data))
		if err == nil && len(b) > maxFrame {
			t.Fatalf("frame of %d bytes accepted", len(b))
		}
	})
}

func TestStatusCheck(t *testing.T) {
	long := string(bytes.Repeat([]byte("x"), maxStrLen+1))
	tests := []struct {
		name string
		s    NodeStatus
		ok   bool
	}{
		{"typical", NodeStatus{Systems: []string{"x86_64-linux", "i686-linux"}, MaxBuilds: 4, Cores: 8, Load1: 1.5}, true},
		{"negative load", NodeStatus{Load1: -1}, false},
		{"max load and speed", NodeStatus{MaxLoad: 6, Speed: 1.25}, true},
		{"negative max load", NodeStatus{MaxLoad: -1}, false},
		{"infinite speed", NodeStatus{Speed: math.Inf(1)}, false},
		{"NaN speed", NodeStatus{Speed: math.NaN()}, false},
		{"negative slots", NodeStatus{MaxBuilds: -1}, false},
		{"empty system", NodeStatus{Systems: []string{""}}, false},
		{"long version", NodeStatus{Version: long}, false},
		{"too many features", NodeStatus{Features: make([]string, maxListLen+1)}, false},
		{"formats", NodeStatus{Format: 2, MinFormat: 1}, true},
		{"no formats (an older node)", NodeStatus{}, true},
		{"min format above format", NodeStatus{Format: 1, MinFormat: 2}, false},
		{"negative format", NodeStatus{Format: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.s.check(); (err == nil) != tt.ok {
				t.Fatalf("check() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestMDNSServiceNameDependsOnSecret(t *testing.T) {
	a, b := mdnsServiceName(testSecret), mdnsServiceName(bytes.Repeat([]byte{8}, 32))
	if a == b || len(a) > 63 {
		t.Fatalf("service names %q and %q", a, b)
	}
}
