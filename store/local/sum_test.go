package local

import (
	"errors"
	"testing"
)

func TestParseSum(t *testing.T) {
	const b32 = "sha256:1l1wmw098rzi4wivbj81xmd9gds4196bm20ia04z4pdprxx3xd76"
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"nix-base32", b32, true},
		{"hex", "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03", true},
		{"sri", "sha256-WJG1tSLV3whtD/CxEPvZ0hu0/HFjrzTQgoai6Eb2vgM=", true},
		{"no algorithm", "1l1wmw098rzi4wivbj81xmd9gds4196bm20ia04z4pdprxx3xd76", false},
		{"sha512", "sha512:abc", false},
		{"short", "sha256:1l1wmw098", false},
		{"bad base64", "sha256-!!!", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSum(tt.in, 10)
			if (err == nil) != tt.ok {
				t.Fatalf("ParseSum(%q) = %v", tt.in, err)
			}
			if err != nil && !errors.Is(err, ErrBadNarHash) {
				t.Errorf("error %v does not wrap ErrBadNarHash", err)
			}
			if err == nil && s.Size != 10 {
				t.Errorf("size %d", s.Size)
			}
		})
	}
	a, _ := ParseSum(b32, 1)
	if a.NarHash() != b32 {
		t.Errorf("NarHash() = %s, want %s", a.NarHash(), b32)
	}
}

// FuzzParseSum checks that ParseSum never panics and that what it accepts
// prints back to a form it reads as the same sum.
func FuzzParseSum(f *testing.F) {
	f.Add("sha256:1l1wmw098rzi4wivbj81xmd9gds4196bm20ia04z4pdprxx3xd76")
	f.Add("sha256-WJG1tSLV3whtD/CxEPvZ0hu0/HFjrzTQgoai6Eb2vgM=")
	f.Add("sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03")
	f.Fuzz(func(t *testing.T, s string) {
		sum, err := ParseSum(s, 0)
		if err != nil {
			return
		}
		again, err := ParseSum(sum.NarHash(), 0)
		if err != nil || again != sum {
			t.Fatalf("%q → %s → %v, %v", s, sum.NarHash(), again, err)
		}
	})
}
