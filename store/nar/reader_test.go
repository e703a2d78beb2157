package nar

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// Parts of archives for the tests below.
var (
	pre   = []any{"nix-archive-1", "(", "type", "directory"}
	fileA = []any{"entry", "(", "name", "a", "node", "(", "type", "regular", "contents", "hello", ")", ")"}
	linkB = []any{"entry", "(", "name", "b", "node", "(", "type", "symlink", "target", "a", ")", ")"}
)

// cat joins lists of parts.
func cat(lists ...[]any) []any {
	var all []any
	for _, l := range lists {
		all = append(all, l...)
	}
	return all
}

// entryOf returns the parts of a directory entry named name holding a regular
// file.
func entryOf(name string) []any {
	return []any{"entry", "(", "name", name, "node", "(", "type", "regular", "contents", "", ")", ")"}
}

// TestReaderAccepts reads a small valid archive and checks every header and
// content.
func TestReaderAccepts(t *testing.T) {
	a := enc(cat(pre, fileA, linkB, []any{")"})...)
	nr := NewReader(bytes.NewReader(a))
	var got []string
	for {
		h, err := nr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(nr)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %v x=%v size=%d target=%q body=%q", h.Path, h.Type, h.Executable, h.Size, h.LinkTarget, body))
	}
	want := []string{
		`/ directory x=false size=0 target="" body=""`,
		`/a regular x=false size=5 target="" body="hello"`,
		`/b symlink x=false size=0 target="a" body=""`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := nr.Next(); err != io.EOF {
		t.Fatalf("Next after the end: %v, want io.EOF", err)
	}
}

// TestReaderRejects feeds broken archives and checks the error: its sentinel,
// the byte offset (that of the part at index at, plus plus) and the entry.
func TestReaderRejects(t *testing.T) {
	deep := []any{"nix-archive-1"}
	for range 4 {
		deep = append(deep, "(", "type", "directory", "entry", "(", "name", "d", "node")
	}
	tests := []struct {
		name  string
		parts []any
		at    int // index of the part where the error is reported
		plus  int // bytes into that part
		path  string
		want  error
	}{
		{"empty input", nil, 0, 0, "", ErrTruncated},
		{"wrong magic", []any{"nix-archive-2"}, 0, 0, "", ErrNotNAR},
		{"huge first length", []any{uint64(1 << 62)}, 0, 0, "", ErrNotNAR},
		{"unknown type", []any{"nix-archive-1", "(", "type", "fifo", ")"}, 3, 0, "/", ErrUnexpectedToken},
		{"missing paren", []any{"nix-archive-1", "type"}, 1, 0, "/", ErrUnexpectedToken},
		{"unknown token in dir", cat(pre, []any{"entyr"}), 4, 0, "/", ErrUnexpectedToken},
		{"keyword too long", cat(pre, []any{strings.Repeat("x", 17)}), 4, 0, "/", ErrUnexpectedToken},
		{"name with slash", cat(pre, entryOf("a/b")), 7, 0, "/", ErrBadName},
		{"name dot", cat(pre, entryOf(".")), 7, 0, "/", ErrBadName},
		{"name dotdot", cat(pre, entryOf("..")), 7, 0, "/", ErrBadName},
		{"empty name", cat(pre, entryOf("")), 7, 0, "/", ErrBadName},
		{"name with NUL", cat(pre, entryOf("a\x00b")), 7, 0, "/", ErrBadName},
		{"name too long", cat(pre, entryOf(strings.Repeat("n", 256))), 7, 0, "/", ErrTooLong},
		{"absurd name length", cat(pre, []any{"entry", "(", "name", uint64(1 << 62)}), 7, 0, "/", ErrTooLong},
		{"duplicate", cat(pre, entryOf("a"), entryOf("a")), 19, 0, "/", ErrDuplicate},
		{"unsorted", cat(pre, entryOf("b"), entryOf("a")), 19, 0, "/", ErrUnsorted},
		{"unsorted bytewise", cat(pre, entryOf("a"), entryOf("B")), 19, 0, "/", ErrUnsorted},
		{"file too large", []any{"nix-archive-1", "(", "type", "regular", "contents", uint64(1 << 40)}, 5, 0, "/", ErrTooLarge},
		{"file size over 2^63", []any{"nix-archive-1", "(", "type", "regular", "contents", uint64(1 << 63)}, 5, 0, "/", ErrTooLarge},
		{"bad padding of a token", []any{"nix-archive-1", uint64(1), []byte("(\x00\x00\x01\x00\x00\x00\x00")}, 2, 1, "/", ErrBadPadding},
		{"bad padding of contents", cat(pre, []any{"entry", "(", "name", "a", "node", "(", "type", "regular", "contents", uint64(3), []byte("abc\x00\x00\x00\x00\x07")}), 14, 3, "/a", ErrBadPadding},
		{"executable marker not empty", []any{"nix-archive-1", "(", "type", "regular", "executable", "x"}, 5, 0, "/", ErrUnexpectedToken},
		{"executable after contents", []any{"nix-archive-1", "(", "type", "regular", "contents", "", "executable", "", ")"}, 6, 0, "/", ErrUnexpectedToken},
		{"empty symlink target", []any{"nix-archive-1", "(", "type", "symlink", "target", "", ")"}, 5, 0, "/", ErrBadTarget},
		{"NUL in symlink target", []any{"nix-archive-1", "(", "type", "symlink", "target", "a\x00", ")"}, 5, 0, "/", ErrBadTarget},
		{"symlink target too long", []any{"nix-archive-1", "(", "type", "symlink", "target", strings.Repeat("t", 4096), ")"}, 5, 0, "/", ErrTooLong},
		{"trailing garbage", cat(pre, []any{")", "x"}), 5, 0, "", ErrTrailingData},
		{"trailing zero bytes", cat(pre, []any{")", []byte{0}}), 5, 0, "", ErrTrailingData},
		{"entry not closed", cat(pre, []any{"entry", "(", "name", "a", "node", "(", "type", "regular", "contents", "", ")", "entry"}), 15, 0, "/a", ErrUnexpectedToken},
		{"too deep", deep, 27, 0, "/d/d/d", ErrTooDeep},
		{"truncated contents", cat(pre, []any{"entry", "(", "name", "a", "node", "(", "type", "regular", "contents", uint64(100), []byte("short")}), 14, 5, "/a", ErrTruncated},
		{"truncated length", []any{"nix-archive-1", []byte{1, 0, 0}}, 1, 3, "/", ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := enc(tt.parts...)
			nr := NewReader(bytes.NewReader(a))
			nr.MaxFileSize, nr.MaxDepth = 1<<30, 3
			err := readAll(nr)
			var fe *FormatError
			if !errors.As(err, &fe) || !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want a FormatError wrapping %v", err, tt.want)
			}
			if off := int64(len(enc(tt.parts[:tt.at]...)) + tt.plus); fe.Offset != off || fe.Path != tt.path {
				t.Fatalf("error %q: at offset %d entry %q, want offset %d entry %q", err, fe.Offset, fe.Path, off, tt.path)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("offset %d", fe.Offset)) {
				t.Fatalf("error %q does not name the offset", err)
			}
			if _, verr := Verify(bytes.NewReader(a)); !errors.Is(verr, tt.want) && tt.name != "file too large" && tt.name != "too deep" {
				t.Fatalf("Verify: got %v, want %v", verr, tt.want)
			}
			if err2 := readAll(nr); err2 != err {
				t.Fatalf("reader did not stay failed: %v", err2)
			}
		})
	}
}

// readAll reads every entry and all contents of nr.
func readAll(nr *Reader) error {
	for {
		_, err := nr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, nr); err != nil {
			return err
		}
	}
}

// TestReaderTruncated cuts a valid archive at every length and checks that
// each prefix is rejected as truncated.
func TestReaderTruncated(t *testing.T) {
	a := enc(cat(pre, fileA, linkB, []any{")"})...)
	for n := range len(a) {
		err := readAll(NewReader(bytes.NewReader(a[:n])))
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("archive cut at %d of %d bytes: got %v, want ErrTruncated", n, len(a), err)
		}
	}
}

// TestReaderSkipsContents checks that Next skips unread contents, including
// contents larger than the reader's buffer.
func TestReaderSkipsContents(t *testing.T) {
	big := strings.Repeat("x", 200<<10+3)
	a := enc(cat(pre, []any{"entry", "(", "name", "a", "node", "(", "type", "regular", "contents", big, ")", ")"}, linkB, []any{")"})...)
	nr := NewReader(bytes.NewReader(a))
	var paths []string
	for {
		h, err := nr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, h.Path)
	}
	if got := strings.Join(paths, " "); got != "/ /a /b" {
		t.Fatalf("entries %q, want \"/ /a /b\"", got)
	}
}
