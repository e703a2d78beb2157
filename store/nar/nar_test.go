package nar

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// enc builds an archive (or a broken one) from parts: a string becomes a NAR
// string (length, bytes, zero padding), a uint64 a raw length field, a []byte
// raw bytes.
func enc(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch p := p.(type) {
		case string:
			b = binary.LittleEndian.AppendUint64(b, uint64(len(p)))
			b = append(b, p...)
			b = append(b, make([]byte, padLen(int64(len(p))))...)
		case uint64:
			b = binary.LittleEndian.AppendUint64(b, p)
		case []byte:
			b = append(b, p...)
		default:
			panic("enc: bad part")
		}
	}
	return b
}

// treeSpec is a file tree to create: path → content. A path ending in "/" is
// a directory; content "->target" makes a symlink; a suffix on the path sets
// a file's mode: "*" 0755, "+" 0700 (only the owner may execute), "!" 0611
// (everyone but the owner may execute: not executable for Nix).
type treeSpec map[string]string

// mixedTree has every kind of object and names whose bytewise order differs
// from a locale's collation.
var mixedTree = treeSpec{
	"bin/":                       "",
	"bin/hello*":                 "#!/bin/sh\necho hello\n",
	"bin/sh":                     "->/bin/busybox",
	"bin/rel":                    "->hello",
	"bin/dangling":               "->../nowhere/at/all",
	"empty-dir/":                 "",
	"empty-file":                 "",
	"a/b/c/d/e/f/deep":           "deep file\n",
	"a/b/c/empty/":               "",
	"names/":                     "",
	"names/Zebra":                "Z",
	"names/apple":                "a",
	"names/Äpfel":                "Ä",
	"names/äpfel":                "ä",
	"names/é":                    "nfc",
	"names/e\u0301":              "nfd",
	"names/ß":                    "sz",
	"names/a b":                  "space",
	"names/a-b":                  "dash",
	"names/a.b":                  "dot",
	"names/a_b":                  "underscore",
	"names/A":                    "upper",
	"names/a":                    "lower",
	"names/10":                   "ten",
	"names/9":                    "nine",
	"names/~tilde":               "tilde",
	"names/😀":                    "emoji",
	"names/.hidden":              "hidden",
	"names/...":                  "three dots",
	"pad/1":                      "x",
	"pad/7":                      "1234567",
	"pad/8":                      "12345678",
	"pad/9":                      "123456789",
	"share/doc/README":           strings.Repeat("lorem ipsum ", 1000),
	"share/doc/link-to-dir":      "->..",
	"share/executable-empty*":    "",
	"share/owner-exec+":          "x",
	"share/others-exec!":         "x",
	"share/doc/big":              strings.Repeat("0123456789abcdef", 3<<16) + "tail", // > the 1 MiB buffer
	"share/doc/sub/":             "",
	"share/doc/sub/link-to-root": "->../../../..",
}

// makeTree creates spec under dir, which must exist.
func makeTree(t testing.TB, dir string, spec treeSpec) {
	t.Helper()
	for p, content := range spec {
		full := filepath.Join(dir, strings.TrimRight(p, "*+!"))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasSuffix(p, "/"):
			err = os.MkdirAll(full, 0o755)
		case strings.HasPrefix(content, "->"):
			err = os.Symlink(content[2:], full)
		default:
			mode := os.FileMode(0o644)
			switch p[len(p)-1] {
			case '*':
				mode = 0o755
			case '+':
				mode = 0o700
			case '!':
				mode = 0o611
			}
			err = os.WriteFile(full, []byte(content), mode)
			if err == nil {
				err = os.Chmod(full, mode) // the umask must not decide the executable bit
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// dumpBytes returns our archive of path.
func dumpBytes(t testing.TB, path string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Dump(&buf, path); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rewrite reads archive a with a Reader and writes every entry back with a
// Writer, returning the new archive or the first error. Both get small
// buffers instead of NewReader's 64 KiB and NewWriter's 1 MiB (the Writer the
// smallest its flush rule allows): that exercises refills and flushes on small
// archives, and makes each fuzzing input cheap (NewWriter clears 1 MiB).
func rewrite(a []byte, maxFile int64, maxDepth int) ([]byte, error) {
	nr := &Reader{MaxFileSize: maxFile, MaxDepth: maxDepth, r: bufio.NewReaderSize(bytes.NewReader(a), 512)}
	var out bytes.Buffer
	nw := &Writer{w: &out, buf: make([]byte, 0, 4*maxTokenLen+2*MaxTargetLen+64)}
	for {
		h, err := nr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if err := nw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := io.Copy(nw, nr); err != nil {
			return nil, err
		}
	}
	if err := nw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// TestRoundTrip dumps trees, reads and rewrites the archive, restores it and
// dumps the result again: every archive must be the same bytes.
func TestRoundTrip(t *testing.T) {
	for name, spec := range map[string]treeSpec{
		"mixed":      mixedTree,
		"empty dir":  {},
		"one file":   {"f": "contents"},
		"executable": {"f*": "#!"},
	} {
		t.Run(name, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "src")
			if err := os.Mkdir(src, 0o755); err != nil {
				t.Fatal(err)
			}
			makeTree(t, src, spec)
			checkRoundTrip(t, src)
			for p := range spec { // each top-level object on its own as a root
				if !strings.Contains(strings.TrimSuffix(p, "/"), "/") {
					checkRoundTrip(t, filepath.Join(src, strings.TrimRight(p, "*+!")))
				}
			}
		})
	}
}

func checkRoundTrip(t *testing.T, src string) {
	t.Helper()
	a := dumpBytes(t, src)
	b, err := rewrite(a, DefaultMaxFileSize, DefaultMaxDepth)
	if err != nil {
		t.Fatalf("%s: reading our own archive: %v", src, err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("%s: rewritten archive differs from the original", src)
	}
	dst := filepath.Join(t.TempDir(), "restored")
	if err := Restore(bytes.NewReader(a), dst); err != nil {
		t.Fatalf("%s: restore: %v", src, err)
	}
	if c := dumpBytes(t, dst); !bytes.Equal(a, c) {
		t.Fatalf("%s: archive of the restored tree differs from the original", src)
	}
	sum, err := HashPath(src)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := HashReader(bytes.NewReader(a)); sum != want || sum.Size != int64(len(a)) {
		t.Fatalf("%s: HashPath = %+v, hash of the archive = %+v (%d bytes)", src, sum, want, len(a))
	}
	if v, err := Verify(bytes.NewReader(a)); err != nil || v != sum {
		t.Fatalf("%s: Verify = %+v, %v; want %+v", src, v, err, sum)
	}
}

// TestWriterRejects checks that a Writer refuses entries out of archive order
// and contents that do not match the header.
func TestWriterRejects(t *testing.T) {
	reg := func(p string, size int64) *Header { return &Header{Path: p, Type: TypeRegular, Size: size} }
	dir := func(p string) *Header { return &Header{Path: p, Type: TypeDirectory} }
	tests := []struct {
		name    string
		headers []*Header
		write   string
		want    error
	}{
		{"no root", nil, "", ErrWriteOrder},
		{"first not root", []*Header{reg("/a", 0)}, "", ErrWriteOrder},
		{"unsorted", []*Header{dir("/"), reg("/b", 0), reg("/a", 0)}, "", ErrWriteOrder},
		{"duplicate", []*Header{dir("/"), reg("/a", 0), reg("/a", 0)}, "", ErrWriteOrder},
		{"not in open dir", []*Header{dir("/"), dir("/a"), reg("/a/x", 0), reg("/b", 0), reg("/a/y", 0)}, "", ErrWriteOrder},
		{"second root", []*Header{reg("/", 0), reg("/", 0)}, "", ErrWriteOrder},
		{"bad name", []*Header{dir("/"), reg("/..", 0)}, "", ErrBadName},
		{"empty name", []*Header{dir("/"), dir("/a"), reg("/a/", 0)}, "", ErrBadName},
		{"relative path", []*Header{dir("/"), reg("a", 0)}, "", ErrBadName},
		{"short contents", []*Header{reg("/", 5)}, "abc", ErrContentsSize},
		{"long contents", []*Header{reg("/", 2)}, "abc", ErrContentsSize},
		{"contents of a dir", []*Header{dir("/")}, "abc", ErrContentsSize},
		{"empty target", []*Header{{Path: "/", Type: TypeSymlink}}, "", ErrBadTarget},
		{"bad type", []*Header{{Path: "/", Type: 9}}, "", ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nw := NewWriter(io.Discard)
			var err error
			for _, h := range tt.headers {
				if err = nw.WriteHeader(h); err != nil {
					break
				}
			}
			if err == nil && tt.write != "" {
				_, err = nw.Write([]byte(tt.write))
			}
			if err == nil {
				err = nw.Close()
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}
