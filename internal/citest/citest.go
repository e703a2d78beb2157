package citest

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Strict reports whether a missing tool must fail a test rather than skip
// it: whether CI is "true".
func Strict() bool { return os.Getenv("CI") == "true" }

// Unprivileged reports whether this run is meant to be without root: under
// CI, the pass as an unprivileged user (CI_UNPRIVILEGED is "true").
func Unprivileged() bool { return os.Getenv("CI_UNPRIVILEGED") == "true" }

// Missing skips tb, or fails it under CI=true, because a tool is missing.
// The message should say what is missing and where it comes from, e.g.
// "nix-store not found: install the Debian package nix-bin"; Missing adds
// what CI=true does about it.
func Missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if Strict() {
		tb.Fatalf("%s (CI=true: a missing tool fails the test)", msg)
	} else {
		tb.Skipf("skipping: %s (under CI=true this fails the test)", msg)
	}
}

// Tool returns the path of program, looked up in $PATH and then in
// /usr/sbin (where nginx is, outside a user's $PATH), or calls Missing
// naming pkg, the Debian package that has it. A program named with a slash
// is looked for there only.
func Tool(tb testing.TB, program, pkg string) string {
	tb.Helper()
	candidates := []string{program, "/usr/sbin/" + program}
	if strings.Contains(program, "/") {
		candidates = candidates[:1]
	}
	for _, p := range candidates {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	Missing(tb, "%s not found: install the Debian package %s", program, pkg)
	return ""
}

// Root skips tb, or fails it under CI=true, unless the test runs as root.
// why says what needs root, e.g. "the builtin executor's mount
// namespaces". In CI's unprivileged pass (CI_UNPRIVILEGED=true) it skips.
func Root(tb testing.TB, why string) {
	tb.Helper()
	requireRoot(tb, why, os.Geteuid() == 0)
}

func requireRoot(tb testing.TB, why string, root bool) {
	tb.Helper()
	if root {
		return
	}
	msg := "needs root: " + why
	switch {
	case Strict() && !Unprivileged():
		tb.Fatalf("%s (CI=true: a test that needs root fails without it, "+
			"except in the unprivileged pass, CI_UNPRIVILEGED=true)", msg)
	case Strict():
		tb.Skipf("skipping: %s (CI_UNPRIVILEGED=true: this is the unprivileged pass)", msg)
	default:
		tb.Skipf("skipping: %s (under CI=true this fails the test, "+
			"except with CI_UNPRIVILEGED=true)", msg)
	}
}
