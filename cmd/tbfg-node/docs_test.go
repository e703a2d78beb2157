package main

import (
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/internal/citest"
	"github.com/tbfg/tbfg-node/internal/version"
)

func TestVersionCommand(t *testing.T) {
	want := version.Get().String() + "\n"
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		code, out, stderr := runMesh(t, args...)
		if code != 0 || out != want {
			t.Errorf("%v: exit %d, output %q (stderr %q), want %q", args, code, out, stderr, want)
		}
	}
	code, out, _ := runMesh(t, "version", "--json")
	var got version.Info
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil || got != version.Get() {
		t.Errorf("version --json: exit %d, %q: %v", code, out, err)
	}
}

// TestEveryCommandShowsItsFlags checks that flagSetOf finds each command's
// flags, which the man page, completion and example settings rely on.
func TestEveryCommandShowsItsFlags(t *testing.T) {
	for _, c := range commands() {
		if flagSetOf(c.name) == nil {
			t.Errorf("%s: no flag set: it must make one with newFlags and parse -h", c.name)
		}
	}
	if fs := flagSetOf("run"); fs == nil || fs.Lookup("max-builds") == nil || fs.Lookup("config") == nil {
		t.Errorf("run's flags lack max-builds or config")
	}
}

func manPage(t *testing.T) string {
	t.Helper()
	code, out, stderr := runMesh(t, "man")
	if code != 0 {
		t.Fatalf("man: exit %d: %s", code, stderr)
	}
	return out
}

func TestManPageHasEveryCommandAndFlag(t *testing.T) {
	page := manPage(t)
	for _, c := range commands() {
		if !strings.Contains(page, ".SS \""+roff("tbfg-node "+c.name+" ")) {
			t.Errorf("no section for %s", c.name)
		}
		flagSetOf(c.name).VisitAll(func(f *flag.Flag) {
			if !strings.Contains(page, `\-\-`+roff(f.Name)) {
				t.Errorf("%s --%s is not in the man page", c.name, f.Name)
			}
		})
	}
}

// TestManPageIsTheSameForEveryUser checks that the man page does not show
// defaults worked out from who generated it.
func TestManPageIsTheSameForEveryUser(t *testing.T) {
	first := manPage(t)
	t.Setenv("HOME", "/nonexistent/other-home")
	t.Setenv("XDG_STATE_HOME", "/nonexistent/other-state")
	if second := manPage(t); second != first {
		t.Error("man page changes with HOME and XDG_STATE_HOME")
	}
}

func TestManPageRenders(t *testing.T) {
	groff := citest.Tool(t, "groff", "groff-base")
	path := filepath.Join(t.TempDir(), "tbfg-node.1")
	if err := os.WriteFile(path, []byte(manPage(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	// -ww: every warning, which it prints on stderr.
	out, err := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z", path).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("groff -man: %v\n%s", err, out)
	}
	man := citest.Tool(t, "man", "man-db")
	out, err = exec.Command(man, "-l", path).Output()
	text := string(out)
	if err != nil || !strings.Contains(text, "tbfg-node init [FLAGS]") || !strings.Contains(text, "--max-builds") {
		t.Errorf("man -l: %v\n%s", err, text)
	}
}

// completeBash sources the completion script and calls it on words, the
// last being the partial word, and returns the completions.
func completeBash(t *testing.T, script string, words ...string) string {
	t.Helper()
	prog := `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _tbfg_node; echo "${COMPREPLY[*]}"`
	out, err := exec.Command("bash", append([]string{"-c", prog, "bash", script}, words...)...).Output()
	if err != nil {
		t.Fatalf("completing %q: %v", words, err)
	}
	return strings.TrimSpace(string(out))
}

func TestBashCompletion(t *testing.T) {
	citest.Tool(t, "bash", "bash")
	code, out, _ := runMesh(t, "completion", "bash")
	if code != 0 {
		t.Fatalf("completion: exit %d", code)
	}
	script := filepath.Join(t.TempDir(), "tbfg-node")
	if err := os.WriteFile(script, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.Command("bash", "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, msg)
	}
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{"tbfg-node", "j"}, "join"},
		{[]string{"tbfg-node", "st"}, "status store"},
		{[]string{"tbfg-node", "--ver"}, "--version"},
		{[]string{"tbfg-node", "config", ""}, "example show"},
		{[]string{"tbfg-node", "store", "d"}, "dump"},
		{[]string{"tbfg-node", "run", "--max-b"}, "--max-builds"},
		{[]string{"tbfg-node", "config", "show", "--js"}, "--json"},
		{[]string{"tbfg-node", "run", "--data-dir", "--"}, ""}, // a value: files
		{[]string{"tbfg-node", "run", "--voter", "--no-md"}, "--no-mdns"},
	} {
		if got := completeBash(t, script, tc.words...); got != tc.want {
			t.Errorf("completing %q: %q, want %q", tc.words, got, tc.want)
		}
	}
}

func TestCompletionRejectsOtherShells(t *testing.T) {
	if code, _, stderr := runMesh(t, "completion", "fish"); code != 2 || !strings.Contains(stderr, `"fish"`) {
		t.Errorf("completion fish: exit %d, stderr %q", code, stderr)
	}
}

func TestRoffEscapes(t *testing.T) {
	for in, want := range map[string]string{
		"--max-builds": `\-\-max\-builds`,
		`a\b`:          `a\eb`,
		".hidden":      `\&.hidden`,
		"'quoted":      `\&'quoted`,
		"line\n.TH x":  `line .TH x`,
		"(…/p2p/ID)":   `(\[u2026]/p2p/ID)`,
	} {
		if got := roff(in); got != want {
			t.Errorf("roff(%q) = %q, want %q", in, got, want)
		}
	}
}
