package nixtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/store"
)

// TestBuildGuixLayout checks that the private Nix instantiates and builds a
// derivation in a /gnu/store-layout store backed by a temporary directory.
func TestBuildGuixLayout(t *testing.T) {
	n := New(t, store.GuixDir)
	expr := filepath.Join(n.Root, "t.nix")
	err := os.WriteFile(expr, []byte(`derivation { name = "t"; system = "x86_64-linux"; builder = "/bin/sh"; args = ["-c" "echo hi > $out"]; }`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	drv := n.Run(t, "nix-instantiate", expr)
	if !strings.HasPrefix(drv, "/gnu/store/") {
		t.Fatalf("nix-instantiate printed %q, want a /gnu/store path", drv)
	}
	out := store.Path(n.Run(t, "nix-store", "--realise", drv))
	got, err := os.ReadFile(n.RealPath(out))
	if err != nil || string(got) != "hi\n" {
		t.Fatalf("output %s: %q, %v", out, got, err)
	}
}
