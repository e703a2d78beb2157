package node

import (
	"path/filepath"
	"testing"
)

func TestParseLoad1(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		ok   bool
	}{
		{"0.52 0.58 0.59 1/467 12345\n", 0.52, true},
		{"12.00 1 1 1/1 1", 12, true},
		{"", 0, false},
		{"abc 0.1", 0, false},
		{"-1 0 0", 0, false},
		{"NaN 0 0", 0, false},
	} {
		got, err := ParseLoad1(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseLoad1(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func FuzzParseLoad1(f *testing.F) {
	f.Add("0.52 0.58 0.59 1/467 12345\n")
	f.Add("")
	f.Add("1e400")
	f.Fuzz(func(t *testing.T, in string) {
		v, err := ParseLoad1(in)
		if err == nil && (v < 0 || v != v) {
			t.Fatalf("ParseLoad1(%q) = %v", in, v)
		}
	})
}

func TestFreeBytesOfMissingPathUsesParent(t *testing.T) {
	dir := t.TempDir()
	want, err := freeBytes(dir)
	if err != nil || want == 0 {
		t.Fatalf("freeBytes(%s) = %d, %v", dir, want, err)
	}
	got, err := freeBytes(filepath.Join(dir, "gnu", "store"))
	if err != nil || got == 0 {
		t.Fatalf("freeBytes of a missing dir = %d, %v; want its parent's", got, err)
	}
}

func TestLocalStatus(t *testing.T) {
	c := DefaultConfig()
	c.DataDir = t.TempDir()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	n := &Node{cfg: c, log: discard()}
	st := n.localStatus()
	if len(st.Systems) == 0 || st.Cores == 0 || st.MaxBuilds == 0 || st.DataFreeBytes == 0 || st.Version == "" {
		t.Errorf("localStatus() = %+v: missing figures", st)
	}
}
