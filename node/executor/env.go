package executor

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/derivation"
	"github.com/tbfg/tbfg-node/store/nixbase32"
)

// buildDirInside is where the build directory appears to the builder: where
// guix-daemon puts it for a Guix store, where Nix's sandbox does otherwise.
func buildDirInside(dir store.Dir, drvName string) string {
	if dir == store.GuixDir {
		return "/tmp/guix-build-" + drvName + ".drv-0"
	}
	return "/build"
}

// buildEnv returns the builder's environment, in the order Nix 2.8 builds it:
// defaults, then the derivation's variables (which may override them), then
// the build directory variables. Variables named in passAsFile are written to
// files in hostTop instead, and <name>Path points at them.
func buildEnv(d *derivation.Derivation, dir store.Dir, cores int, top, hostTop string) ([]string, error) {
	env := map[string]string{
		"PATH":            "/path-not-set",
		"HOME":            "/homeless-shelter",
		"NIX_STORE":       string(dir),
		"NIX_BUILD_CORES": strconv.Itoa(cores),
	}
	asFile := make(map[string]bool)
	for _, name := range strings.Fields(d.Env["passAsFile"]) {
		asFile[name] = true
	}
	for k, v := range d.Env {
		if !asFile[k] {
			env[k] = v
			continue
		}
		file := ".attr-" + nixbase32.Encode(store.SHA256Of([]byte(k)).Digest)
		if err := os.WriteFile(filepath.Join(hostTop, file), []byte(v), 0o644); err != nil {
			return nil, fmt.Errorf("pass %s as a file: %w", k, err)
		}
		env[k+"Path"] = top + "/" + file
	}
	for _, k := range []string{"NIX_BUILD_TOP", "TMPDIR", "TEMPDIR", "TMP", "TEMP", "PWD"} {
		env[k] = top
	}
	env["NIX_LOG_FD"] = "2"
	env["TERM"] = "xterm-256color"
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out, nil
}
