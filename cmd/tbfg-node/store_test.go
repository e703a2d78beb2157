package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/internal/nixtest"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/nar"
)

// runWithStdin runs the CLI with args and stdin and returns its exit code and
// output.
func runWithStdin(t *testing.T, stdin []byte, args ...string) (code int, stdout []byte, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), &stdio{in: bytes.NewReader(stdin), out: &out, err: &errOut}, args)
	return code, out.Bytes(), errOut.String()
}

// storeTestTree makes a small tree with a file, an executable, a symlink and
// an empty directory, and returns its path.
func storeTestTree(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tree")
	for _, d := range []string{dir, filepath.Join(dir, "bin"), filepath.Join(dir, "empty")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "run"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "bin", "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("bin/run", filepath.Join(dir, "run")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestStoreCommandsAgainstNix checks `store dump` against nix-store --dump,
// `store hash` against nix hash path, and `store restore` on Nix's archive.
func TestStoreCommandsAgainstNix(t *testing.T) {
	n := nixtest.New(t, store.GuixDir)
	tree := storeTestTree(t)
	want, err := n.CmdNoStore("nix-store", "--dump", tree).Output()
	if err != nil {
		t.Fatalf("nix-store --dump: %v", err)
	}

	code, out, stderr := runWithStdin(t, nil, "store", "dump", tree)
	if code != 0 || !bytes.Equal(out, want) {
		t.Fatalf("store dump: exit %d, %d bytes (Nix: %d), stderr %q", code, len(out), len(want), stderr)
	}

	code, out, stderr = runWithStdin(t, nil, "store", "hash", tree)
	nixHash := "sha256:" + n.Run(t, "nix", "hash", "path", "--type", "sha256", "--base32", tree) + "\n"
	if code != 0 || string(out) != nixHash {
		t.Fatalf("store hash: exit %d, printed %q, Nix says %q, stderr %q", code, out, nixHash, stderr)
	}

	code, out, _ = runWithStdin(t, nil, "store", "hash", "--size", tree)
	if lines := strings.Split(string(out), "\n"); code != 0 || len(lines) != 3 || lines[1] != strconv.Itoa(len(want)) {
		t.Fatalf("store hash --size: exit %d, printed %q, want the hash and %d", code, out, len(want))
	}

	restored := filepath.Join(t.TempDir(), "restored")
	if code, _, stderr := runWithStdin(t, want, "store", "restore", restored); code != 0 {
		t.Fatalf("store restore: exit %d, stderr %q", code, stderr)
	}
	again, err := n.CmdNoStore("nix-store", "--dump", restored).Output()
	if err != nil || !bytes.Equal(again, want) {
		t.Fatalf("Nix archives the restored tree differently (%v)", err)
	}
}

// TestStoreRestoreRejects checks that a bad archive fails with a message
// naming the offset, and that nothing is created.
func TestStoreRestoreRejects(t *testing.T) {
	tree := storeTestTree(t)
	var good bytes.Buffer
	if err := nar.Dump(&good, tree); err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	dir := filepath.Join(parent, "out")
	bad := append(bytes.Clone(good.Bytes()), 'x')
	code, _, stderr := runWithStdin(t, bad, "store", "restore", dir)
	if code != 1 || !strings.Contains(stderr, "tbfg-node store restore: ") || !strings.Contains(stderr, "nar offset") {
		t.Fatalf("exit %d, stderr %q; want exit 1 and an error naming the offset", code, stderr)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Fatalf("restore left %d entries behind", len(entries))
	}

	truncated := good.Bytes()[:good.Len()-8]
	if code, _, stderr := runWithStdin(t, truncated, "store", "restore", dir); code != 1 || !strings.Contains(stderr, "truncated") {
		t.Fatalf("truncated archive: exit %d, stderr %q", code, stderr)
	}

	code, _, stderr = runWithStdin(t, good.Bytes(), "store", "restore", "--max-file-size", "3", dir)
	if code != 1 || !strings.Contains(stderr, "file too large") {
		t.Fatalf("--max-file-size 3: exit %d, stderr %q", code, stderr)
	}
}

// TestStoreUsage checks the exit codes of malformed command lines.
func TestStoreUsage(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"store", "dump"}, 2, "usage: tbfg-node store dump"},
		{[]string{"store", "hash", "a", "b"}, 2, "usage: tbfg-node store hash"},
		{[]string{"store", "restore"}, 2, "usage: tbfg-node store restore"},
		{[]string{"store", "restore", "--bogus", "x"}, 2, "flag provided but not defined"},
		{[]string{"store", "dump", "-h"}, 0, "usage: tbfg-node store dump"},
		{[]string{"store", "hash", missing}, 1, "no such file or directory"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, stderr := runWithStdin(t, nil, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.msg) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr, tt.code, tt.msg)
			}
		})
	}
}
