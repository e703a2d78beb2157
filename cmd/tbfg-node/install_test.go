package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/internal/citest"
)

// TestMakeInstall runs the Makefile's install into a DESTDIR and checks
// what a user gets: the stamped binary, the man page, the unit running the
// installed binary, the completion script; then that uninstall removes it.
func TestMakeInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tbfg-node; not with -short")
	}
	mk := citest.Tool(t, "make", "make")
	dest, build := t.TempDir(), t.TempDir()
	const prefix = "/opt/tbfg"
	vars := []string{"-C", "../..", "DESTDIR=" + dest, "PREFIX=" + prefix,
		"BIN=" + filepath.Join(build, "tbfg-node"), "VERSION=v9.9.9-test", "COMMIT=abc123"}
	if out, err := exec.Command(mk, append([]string{"install"}, vars...)...).CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	root := filepath.Join(dest, prefix)
	files := []string{"bin/tbfg-node", "share/man/man1/tbfg-node.1", "lib/systemd/system/tbfg-node.service",
		"share/bash-completion/completions/tbfg-node", "share/doc/tbfg-node/config.toml.example",
		"share/doc/tbfg-node/tbfg-node-guix.conf"}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("not installed: %v", err)
		}
	}
	out, err := exec.Command(filepath.Join(root, "bin/tbfg-node"), "version").Output()
	want := "tbfg-node v9.9.9-test (commit abc123, " + runtime.Version() + ")\n"
	if err != nil || string(out) != want {
		t.Errorf("installed tbfg-node version: %q, %v; want %q", out, err, want)
	}
	// The installed example, edited, read back by the installed binary.
	example, err := os.ReadFile(filepath.Join(root, "share/doc/tbfg-node/config.toml.example"))
	if err != nil {
		t.Fatal(err)
	}
	settings := filepath.Join(build, "config.toml")
	edited := strings.Replace(string(example), "\nreplicas = 2\n", "\nreplicas = 3\n", 1)
	if err := os.WriteFile(settings, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	line := strings.Count(edited[:strings.Index(edited, "\nreplicas = 3")+1], "\n") + 1
	out, err = exec.Command(filepath.Join(root, "bin/tbfg-node"), "config", "show", "--config", settings).Output()
	wantShow := regexp.MustCompile(fmt.Sprintf(`\nreplicas +3 +%s:%d\n`, regexp.QuoteMeta(settings), line))
	if err != nil || !wantShow.Match(out) {
		t.Errorf("installed tbfg-node config show: %v, want %s in\n%s", err, wantShow, out)
	}
	unit, _ := os.ReadFile(filepath.Join(root, "lib/systemd/system/tbfg-node.service"))
	if !strings.Contains(string(unit), "\nExecStart="+prefix+"/bin/tbfg-node run") {
		t.Errorf("installed unit does not run %s/bin/tbfg-node:\n%s", prefix, unit)
	}
	dropIn, _ := os.ReadFile(filepath.Join(root, "share/doc/tbfg-node/tbfg-node-guix.conf"))
	if !strings.Contains(string(dropIn), "\nExecStart="+prefix+"/bin/tbfg-node run --executor guix") {
		t.Errorf("installed guix drop-in does not run %s/bin/tbfg-node:\n%s", prefix, dropIn)
	}
	verifyInstalledUnit(t, dest, prefix)
	if got := completeBash(t, filepath.Join(root, "share/bash-completion/completions/tbfg-node"), "tbfg-node", "ver"); got != "version" {
		t.Errorf("installed completion of ver: %q", got)
	}
	if out, err := exec.Command(mk, append([]string{"uninstall"}, vars...)...).CombinedOutput(); err != nil {
		t.Fatalf("make uninstall: %v\n%s", err, out)
	}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(root, f)); !os.IsNotExist(err) {
			t.Errorf("%s left by uninstall (%v)", f, err)
		}
	}
}

// verifyInstalledUnit runs systemd-analyze verify over the installed unit,
// with the installed man page on MANPATH, so that its Documentation= line is
// checked too. verify wants ExecStart='s program to exist, so a copy points
// at it under DESTDIR.
func verifyInstalledUnit(t *testing.T, dest, prefix string) {
	analyze := citest.Tool(t, "systemd-analyze", "systemd")
	root := filepath.Join(dest, prefix)
	unit, err := os.ReadFile(filepath.Join(root, "lib/systemd/system/tbfg-node.service"))
	if err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(t.TempDir(), "tbfg-node.service")
	unit = []byte(strings.ReplaceAll(string(unit), "="+prefix+"/bin/", "="+root+"/bin/"))
	if err := os.WriteFile(copied, unit, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(analyze, "verify", "--man=yes", copied)
	cmd.Env = append(os.Environ(), "MANPATH="+filepath.Join(root, "share/man"))
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify of the installed unit: %v\n%s", err, out)
	}
}
