package main

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain keeps the tests from reading the machine's settings file: root's
// is moved to a path that does not exist, and a user's XDG_CONFIG_HOME to
// an empty directory.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tbfg-config")
	if err != nil {
		panic(err)
	}
	etcConfigFile = filepath.Join(dir, "etc", "config.toml")
	os.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "xdg"))
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// writeDefaultConfig writes text as the settings file read without
// --config, for this test only.
func writeDefaultConfig(t *testing.T, text string) string {
	t.Helper()
	path := defaultConfigFile()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path) })
	return path
}

func TestDefaultConfigFile(t *testing.T) {
	got := defaultConfigFile()
	if os.Geteuid() == 0 {
		if got != etcConfigFile {
			t.Errorf("as root: %s, want %s", got, etcConfigFile)
		}
		return
	}
	if want := filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "tbfg", "config.toml"); got != want {
		t.Errorf("as a user: %s, want %s", got, want)
	}
}

func TestConfigTOMLErrorsNameTheLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	text := "# farm settings\nvoter = true\n\nmax-builds = \"lots\"\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runMesh(t, "run", "--data-dir", dir, "--config", path)
	want := path + `:4: max-builds: want an integer, got "lots"`
	if code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr, want)
	}
}

func TestConfigDefaultFileIsRead(t *testing.T) {
	path := writeDefaultConfig(t, "raft-profile = \"fast\"\n")
	code, _, stderr := runMesh(t, "run", "--data-dir", t.TempDir())
	if code != 1 || !strings.Contains(stderr, `--raft-profile "fast"`) {
		t.Errorf("%s not read: exit %d, stderr %q", path, code, stderr)
	}
	// --config off reads none: the run gets as far as the empty data dir.
	code, _, stderr = runMesh(t, "run", "--data-dir", t.TempDir(), "--config", "off")
	if code != 1 || !strings.Contains(stderr, "not initialised") {
		t.Errorf("--config off: exit %d, stderr %q", code, stderr)
	}
}

func TestConfigShow(t *testing.T) {
	path := writeDefaultConfig(t, "# farm\ndata-dir = \"/srv/tbfg\"\nmax-builds = 4\nsecret-file = \"/etc/tbfg/secret\"\nsecret = \"abab\"\npeer = [\"/ip4/198.18.0.1/tcp/8760\"]\n")
	code, out, stderr := runMesh(t, "config", "show", "--max-builds", "2", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var view configView
	if err := json.Unmarshal([]byte(out), &view); err != nil {
		t.Fatal(err)
	}
	got := map[string]settingView{}
	for _, s := range view.Settings {
		got[s.Name] = s
	}
	for name, want := range map[string]settingView{
		"data-dir":    {"data-dir", "/srv/tbfg", path + ":2"},
		"max-builds":  {"max-builds", "2", "flag"},
		"secret-file": {"secret-file", "/etc/tbfg/secret", path + ":4"},
		"peer":        {"peer", "/ip4/198.18.0.1/tcp/8760", path + ":6"},
		"secret":      {"secret", "(hidden)", path + ":5"},
		"voter":       {"voter", "true", "default"},
	} {
		if got[name] != want {
			t.Errorf("%s: %+v, want %+v", name, got[name], want)
		}
	}
	if view.File != path || got["config"].Name != "" || got["json"].Name != "" {
		t.Errorf("file %q (want %q), config or json listed: %v %v", view.File, path, got["config"], got["json"])
	}
	code, out, _ = runMesh(t, "config", "show")
	if code != 0 || !strings.Contains(out, "Settings file: "+path) || !strings.Contains(out, "max-builds") {
		t.Errorf("config show: exit %d, output:\n%s", code, out)
	}
}

// TestConfigExampleParsesBack checks that config example prints every flag
// of init, join and run, and that the file it prints, read by each of them,
// changes nothing: every flag keeps its default.
func TestConfigExampleParsesBack(t *testing.T) {
	code, out, stderr := runMesh(t, "config", "example")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range daemonCommands {
		fs := flagSetOf(name)
		fs.VisitAll(func(f *flag.Flag) {
			if f.Name != "config" && !strings.Contains(out, "\n"+f.Name+" = ") && !strings.Contains(out, "\n# "+f.Name+" = ") {
				t.Errorf("example lacks %s's --%s", name, f.Name)
			}
		})
		if _, _, err := loadConfig(fs, path); err != nil {
			t.Fatalf("%s reading the example: %v", name, err)
		}
		fs.VisitAll(func(f *flag.Flag) {
			if f.Value.String() != f.DefValue {
				t.Errorf("%s --%s = %q after the example, want the default %q", name, f.Name, f.Value.String(), f.DefValue)
			}
		})
	}
	for _, want := range []string{"\n# data-dir = ", "\n# max-builds = 0\n", "\nvoter = true\n", "(only for join)\nsecret-file = \"\"\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("example lacks %q", want)
		}
	}
}

func TestClientCommandsUseTheConfiguredDataDir(t *testing.T) {
	writeDefaultConfig(t, "data-dir = \"/srv/tbfg\"\nmax-builds = 3\n")
	for _, name := range []string{"status", "builds", "submit", "leave"} {
		if got := flagSetOf(name).Lookup("data-dir").DefValue; got != "/srv/tbfg" {
			t.Errorf("%s --data-dir defaults to %s, want the settings file's /srv/tbfg", name, got)
		}
	}
}
