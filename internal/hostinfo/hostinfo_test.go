package hostinfo

import (
	"path/filepath"
	"strings"
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
	want, err := FreeBytes(dir)
	if err != nil || want == 0 {
		t.Fatalf("FreeBytes(%s) = %d, %v", dir, want, err)
	}
	got, err := FreeBytes(filepath.Join(dir, "gnu", "store"))
	if err != nil || got == 0 {
		t.Fatalf("FreeBytes of a missing dir = %d, %v; want its parent's", got, err)
	}
}

func TestNativeSystems(t *testing.T) {
	for _, tc := range []struct {
		arch string
		want string
	}{{"amd64", "x86_64-linux i686-linux"}, {"arm64", "aarch64-linux"}, {"386", "i686-linux"}, {"mips", ""}} {
		if got := strings.Join(NativeSystems(tc.arch), " "); got != tc.want {
			t.Errorf("NativeSystems(%s) = %q, want %q", tc.arch, got, tc.want)
		}
	}
}
