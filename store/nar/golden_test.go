package nar

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Regenerate testdata/golden.nar with Nix (nix-bin) by running
//
//	go test ./store/nar -run TestDumpGolden -update-golden
var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/golden.nar with nix-store --dump")

// goldenTree is small enough to keep its archive in testdata.
var goldenTree = treeSpec{
	"bin/":          "",
	"bin/hello*":    "#!/bin/sh\necho hello\n",
	"bin/sh":        "->/gnu/store/00000000000000000000000000000000-busybox/bin/sh",
	"bin/rel":       "->hello",
	"empty-dir/":    "",
	"empty-file":    "",
	"owner-exec+":   "x",
	"others-exec!":  "x",
	"a/b/c/deep":    "deep\n",
	"names/Zebra":   "Z",
	"names/apple":   "a",
	"names/Äpfel":   "Ä",
	"names/e\u0301": "nfd",
	"names/é":       "nfc",
	"names/a.b":     "dot",
	"names/a-b":     "dash",
	"pad/7":         "1234567",
	"pad/8":         "12345678",
	"pad/9":         "123456789",
}

// TestDumpGolden checks our archive of goldenTree against the bytes Nix
// wrote for the same tree, so the format is checked even where Nix is not
// installed.
func TestDumpGolden(t *testing.T) {
	top := filepath.Join(t.TempDir(), "golden")
	if err := os.Mkdir(top, 0o755); err != nil {
		t.Fatal(err)
	}
	makeTree(t, top, goldenTree)
	golden := filepath.Join("testdata", "golden.nar")
	if *updateGolden {
		out, err := exec.Command("nix-store", "--dump", top).Output()
		if err != nil {
			t.Fatalf("nix-store --dump: %v", err)
		}
		if err := os.WriteFile(golden, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := dumpBytes(t, top); !bytes.Equal(got, want) {
		t.Fatalf("archive differs from %s at byte %d", golden, firstDiff(got, want))
	}
	if got, err := rewrite(want, DefaultMaxFileSize, DefaultMaxDepth); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("reading and rewriting %s: %v", golden, err)
	}
}
