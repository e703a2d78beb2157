package citest

import (
	"fmt"
	"strings"
	"testing"
)

// recorder is a testing.TB that records a skip or a failure instead of
// ending the test.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                        {}
func (r *recorder) Skipf(format string, a ...any)  { r.skipped = fmt.Sprintf(format, a...) }
func (r *recorder) Fatalf(format string, a ...any) { r.failed = fmt.Sprintf(format, a...) }

// TestDecisions checks, for each setting of the switches, whether a missing
// tool and a missing root skip or fail, and that each message says so.
func TestDecisions(t *testing.T) {
	tests := []struct {
		ci, unprivileged     string
		toolFails, rootFails bool
		toolSays, rootSays   string
	}{
		{"", "", false, false, "under CI=true this fails", "under CI=true this fails"},
		{"1", "", false, false, "under CI=true this fails", "under CI=true this fails"},
		{"true", "", true, true, "CI=true: a missing tool fails", "CI=true: a test that needs root fails"},
		{"true", "true", true, false, "CI=true: a missing tool fails", "this is the unprivileged pass"},
		{"", "true", false, false, "under CI=true this fails", "under CI=true this fails"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("CI=%q,CI_UNPRIVILEGED=%q", tt.ci, tt.unprivileged), func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			t.Setenv("CI_UNPRIVILEGED", tt.unprivileged)
			var tool, root recorder
			Missing(&tool, "x not found: install the Debian package %s", "x-pkg")
			requireRoot(&root, "mount namespaces", false)
			check(t, "missing tool", tool, tt.toolFails, "x-pkg", tt.toolSays)
			check(t, "not root", root, tt.rootFails, "needs root: mount namespaces", tt.rootSays)
			var asRoot recorder
			requireRoot(&asRoot, "mount namespaces", true)
			if asRoot.skipped != "" || asRoot.failed != "" {
				t.Errorf("as root: skipped %q, failed %q", asRoot.skipped, asRoot.failed)
			}
		})
	}
}

func check(t *testing.T, what string, r recorder, fails bool, says ...string) {
	t.Helper()
	msg, other := r.skipped, r.failed
	if fails {
		msg, other = r.failed, r.skipped
	}
	if msg == "" || other != "" {
		t.Errorf("%s: skipped %q, failed %q; want it to fail: %v", what, r.skipped, r.failed, fails)
	}
	for _, s := range says {
		if !strings.Contains(msg, s) {
			t.Errorf("%s: message %q does not say %q", what, msg, s)
		}
	}
}

// TestTool finds a program every machine has, and reports one that no
// machine has.
func TestTool(t *testing.T) {
	t.Setenv("CI", "")
	if p := Tool(t, "sh", "dash"); p == "" {
		t.Error("sh not found")
	}
	var r recorder
	Tool(&r, "tbfg-no-such-program", "no-such-package")
	if !strings.Contains(r.skipped, "tbfg-no-such-program not found: install the Debian package no-such-package") {
		t.Errorf("skip message %q", r.skipped)
	}
}
