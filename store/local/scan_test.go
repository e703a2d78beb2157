package local

import (
	"bytes"
	"crypto/sha256"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/store"
)

const (
	hashA = "0c5mzsdq8v7avq5flq7r4ah31lwyllz3"
	hashB = "1iz5g4c9x34v9f9p6xap0lab48ff9sp2"
	hashC = "z58vnjj4h6981kny5sh3mlfyf9j4i1va"
)

var (
	pathA = store.Path("/gnu/store/" + hashA + "-a")
	pathB = store.Path("/gnu/store/" + hashB + "-b")
	pathC = store.Path("/gnu/store/" + hashC + "-c")
)

func TestScanner(t *testing.T) {
	candidates := []store.Path{pathA, pathB, pathC}
	tests := []struct {
		name string
		data string
		want []store.Path
	}{
		{"empty", "", nil},
		{"none", "no store paths here at all, just text /gnu/store/", nil},
		{"full path", "exec " + string(pathA) + "/bin/sh", []store.Path{pathA}},
		{"bare hash", hashB, []store.Path{pathB}},
		{"two", hashC + "\x00" + hashA, []store.Path{pathA, pathC}},
		{"adjacent hashes", hashA + hashB, []store.Path{pathA, pathB}},
		{"inside base32 run", "zz" + hashC + "00", []store.Path{pathC}},
		{"truncated hash", hashA[:31], nil},
		{"one wrong char", hashA[:10] + "e" + hashA[11:], nil},
		{"unknown hash", "00000000000000000000000000000000", nil},
		{"utf-16 is not found", utf16(hashA), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := NewScanner(candidates)
			sc.Write([]byte(tt.data))
			if got := sc.Found(); !slices.Equal(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
				t.Errorf("found %v, want %v", got, tt.want)
			}
		})
	}
}

func utf16(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		b.WriteByte(c)
		b.WriteByte(0)
	}
	return b.String()
}

// TestScannerSplitWrites writes the same data cut at every position and in
// one-byte writes: a hash part split across writes must still be found.
func TestScannerSplitWrites(t *testing.T) {
	data := []byte("prefix " + string(pathA) + " middle" + hashC + "|")
	want := []store.Path{pathA, pathC}
	for cut := range len(data) + 1 {
		sc := NewScanner([]store.Path{pathA, pathB, pathC})
		sc.Write(data[:cut])
		sc.Write(data[cut:])
		if got := sc.Found(); !slices.Equal(got, want) {
			t.Fatalf("cut at %d: found %v, want %v", cut, got, want)
		}
	}
	sc := NewScanner([]store.Path{pathA, pathB, pathC})
	for i := range data {
		sc.Write(data[i : i+1])
	}
	if got := sc.Found(); !slices.Equal(got, want) {
		t.Fatalf("byte by byte: found %v, want %v", got, want)
	}
}

// naiveFound is the obvious quadratic search the Scanner must agree with.
func naiveFound(data []byte, candidates []store.Path) []store.Path {
	var out []store.Path
	for _, p := range candidates {
		if bytes.Contains(data, []byte(p.HashPart())) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// FuzzScanner checks the Scanner against naiveFound on arbitrary data cut
// into two writes.
func FuzzScanner(f *testing.F) {
	f.Add([]byte(hashA+hashB), 5)
	f.Add([]byte("xx"+hashC[:20]+"|"+hashC), 22)
	f.Add([]byte{}, 0)
	candidates := []store.Path{pathA, pathB, pathC}
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		if cut < 0 || cut > len(data) {
			cut = len(data) / 2
		}
		sc := NewScanner(candidates)
		sc.Write(data[:cut])
		sc.Write(data[cut:])
		got, want := sc.Found(), naiveFound(data, candidates)
		if len(got) != len(want) || !slices.Equal(got, want) && len(want) > 0 {
			t.Fatalf("found %v, want %v", got, want)
		}
	})
}

// BenchmarkScanner scans binary-like data for three candidates and reports
// its speed relative to SHA-256 over the same data in the same run
// (x-faster-than-sha256 > 1: scanning is faster than the NAR hash it runs
// beside).
func BenchmarkScanner(b *testing.B) {
	data := bytes.Repeat([]byte("ELF\x7f some binary \x00\x01 text with words and /usr/lib paths "+hashA[:20]+"\n"), 1<<14)
	candidates := []store.Path{pathA, pathB, pathC}
	b.SetBytes(int64(len(data)))
	var scan, hash time.Duration
	for b.Loop() {
		start := time.Now()
		sc := NewScanner(candidates)
		sc.Write(data)
		scan += time.Since(start)
		start = time.Now()
		sha256.Sum256(data)
		hash += time.Since(start)
	}
	b.ReportMetric(float64(hash)/float64(scan), "x-faster-than-sha256")
}
