package nar

import (
	"errors"
	"fmt"
	"strings"
)

// Type is the kind of a file system object in an archive.
type Type uint8

// The three kinds of object a NAR can hold.
const (
	TypeRegular Type = iota + 1
	TypeDirectory
	TypeSymlink
)

// String returns the word the NAR format uses for t.
func (t Type) String() string {
	switch t {
	case TypeRegular:
		return "regular"
	case TypeDirectory:
		return "directory"
	case TypeSymlink:
		return "symlink"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Header describes one entry of an archive, in the order the archive holds
// them: the root first, then each directory's entries sorted by name, depth
// first.
type Header struct {
	// Path is the entry's location inside the archive: "/" for the root,
	// "/bin/sh" for an entry two levels down.
	Path string
	// Type is the kind of object.
	Type Type
	// Executable is set for regular files with the executable bit.
	Executable bool
	// Size is the length of a regular file's contents; 0 for other types.
	Size int64
	// LinkTarget is a symlink's target, verbatim; empty for other types.
	LinkTarget string
}

// Limits on what a NAR may hold, so that untrusted input cannot exhaust memory,
// file descriptors or disk.
const (
	// MaxNameLen is the longest entry name accepted (NAME_MAX on Linux).
	MaxNameLen = 255
	// MaxTargetLen is the longest symlink target accepted (PATH_MAX - 1).
	MaxTargetLen = 4095
	// DefaultMaxFileSize is a Reader's default bound on one file's contents.
	DefaultMaxFileSize int64 = 64 << 30
	// DefaultMaxDepth is a Reader's default bound on directory nesting.
	DefaultMaxDepth = 256
	// maxTokenLen bounds the keywords of the format ("nix-archive-1" is the
	// longest).
	maxTokenLen = 16
)

// Sentinel errors. Every error from a Reader is a *FormatError wrapping one of
// these (or an I/O error of the underlying reader); Writer and Restore errors
// wrap them too. Compare with errors.Is.
var (
	// ErrNotNAR means the input does not start with the NAR magic string.
	ErrNotNAR = errors.New("not a NAR (missing nix-archive-1 header)")
	// ErrUnexpectedToken means a keyword of the format was not the one the
	// grammar allows at that point.
	ErrUnexpectedToken = errors.New("unexpected token")
	// ErrBadName means an entry name is empty, ".", "..", too long, or holds
	// '/' or NUL.
	ErrBadName = errors.New("invalid entry name")
	// ErrUnsorted means a directory's entries are not in strictly increasing
	// byte order.
	ErrUnsorted = errors.New("directory entries not sorted")
	// ErrDuplicate means a directory holds two entries with the same name.
	ErrDuplicate = errors.New("duplicate directory entry")
	// ErrBadTarget means a symlink target is empty, too long or holds NUL.
	ErrBadTarget = errors.New("invalid symlink target")
	// ErrTooLong means a string's length field exceeds the bound for its place.
	ErrTooLong = errors.New("string too long")
	// ErrTooLarge means a file's contents exceed the reader's MaxFileSize.
	ErrTooLarge = errors.New("file too large")
	// ErrTooDeep means directories nest deeper than the reader's MaxDepth.
	ErrTooDeep = errors.New("directories nested too deeply")
	// ErrBadPadding means the padding after a string is not all zero bytes.
	ErrBadPadding = errors.New("non-zero padding")
	// ErrTrailingData means bytes follow the end of the archive.
	ErrTrailingData = errors.New("trailing data after archive")
	// ErrTruncated means the input ended inside the archive.
	ErrTruncated = errors.New("truncated archive")
	// ErrWriteOrder means a Writer was given an entry that is not the next one
	// in archive order, or a header or contents at the wrong time; or that
	// Restore was called on a Reader that had already been advanced.
	ErrWriteOrder = errors.New("entry out of archive order")
	// ErrContentsSize means a regular file's contents did not match its
	// Header.Size.
	ErrContentsSize = errors.New("contents do not match size")
	// ErrUnsupported means a file system object is neither a regular file, a
	// directory nor a symlink (a socket, device or FIFO).
	ErrUnsupported = errors.New("unsupported file type")
	// ErrExists means a restore target already exists.
	ErrExists = errors.New("restore target exists")
)

// FormatError is an error in an archive: where it happened and what was wrong.
type FormatError struct {
	// Offset is the byte offset in the archive of the token or string that
	// broke the format.
	Offset int64
	// Path is the entry being read ("/" for the root), or "" before the root.
	Path string
	// Err says what was wrong; it wraps one of the sentinel errors.
	Err error
}

// Error returns "nar offset N, entry P: " followed by what was wrong.
func (e *FormatError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("nar offset %d: %v", e.Offset, e.Err)
	}
	return fmt.Sprintf("nar offset %d, entry %q: %v", e.Offset, e.Path, e.Err)
}

// Unwrap returns Err, so that errors.Is finds the sentinel error.
func (e *FormatError) Unwrap() error { return e.Err }

// checkName returns an error wrapping ErrBadName if name cannot be a directory
// entry.
func checkName(name string) error {
	switch {
	case name == "", name == ".", name == "..":
		return fmt.Errorf("%w %q", ErrBadName, name)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: %d bytes long, limit %d", ErrBadName, len(name), MaxNameLen)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("%w %q: contains '/' or NUL", ErrBadName, name)
	}
	return nil
}

// checkTarget returns an error wrapping ErrBadTarget if target cannot be the
// target of a symlink.
func checkTarget(target string) error {
	switch {
	case target == "":
		return fmt.Errorf("%w: empty", ErrBadTarget)
	case len(target) > MaxTargetLen:
		return fmt.Errorf("%w: %d bytes long, limit %d", ErrBadTarget, len(target), MaxTargetLen)
	case strings.IndexByte(target, 0) >= 0:
		return fmt.Errorf("%w %q: contains NUL", ErrBadTarget, target)
	}
	return nil
}

// splitPath splits an entry path into its parent's path and its name:
// "/a/b" gives "/a" and "b", "/a" gives "/" and "a".
func splitPath(p string) (parent, name string) {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/", p[i+1:]
	}
	return p[:i], p[i+1:]
}

// joinPath is the inverse of splitPath.
func joinPath(parent, name string) string {
	if parent == "/" {
		return "/" + name
	}
	return parent + "/" + name
}
