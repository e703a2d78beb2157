package hostinfo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// NativeSystems are the Nix system types a Linux machine of Go architecture
// goarch builds for without emulation; none for an architecture it does not
// know.
func NativeSystems(goarch string) []string {
	switch goarch {
	case "amd64":
		return []string{"x86_64-linux", "i686-linux"}
	case "386":
		return []string{"i686-linux"}
	case "arm64":
		return []string{"aarch64-linux"}
	case "arm":
		return []string{"armhf-linux"}
	case "riscv64":
		return []string{"riscv64-linux"}
	case "ppc64le":
		return []string{"powerpc64le-linux"}
	}
	return nil
}

// Load1 is the machine's 1-minute load average, from /proc/loadavg.
func Load1() (float64, error) { return readLoad1("/proc/loadavg") }

// readLoad1 reads the 1-minute load average from a file in /proc/loadavg's
// format.
func readLoad1(path string) (float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return ParseLoad1(string(b))
}

// ParseLoad1 returns the 1-minute load average from the text of
// /proc/loadavg ("0.52 0.58 0.59 1/467 12345").
func ParseLoad1(text string) (float64, error) {
	first, _, _ := strings.Cut(strings.TrimSpace(text), " ")
	if first == "" {
		return 0, errors.New("loadavg: empty")
	}
	v, err := strconv.ParseFloat(first, 64)
	if err != nil || !(v >= 0 && v <= 1e9) { // also rejects NaN
		return 0, fmt.Errorf("loadavg: field 1 %q: not a load average", first)
	}
	return v, nil
}

// FreeBytes is the space available to unprivileged users on the file system
// of path, or of its nearest existing parent when path does not exist yet.
func FreeBytes(path string) (uint64, error) {
	for p := filepath.Clean(path); ; p = filepath.Dir(p) {
		var fs syscall.Statfs_t
		err := syscall.Statfs(p, &fs)
		if err == nil {
			return fs.Bavail * uint64(fs.Bsize), nil
		}
		if !errors.Is(err, syscall.ENOENT) || p == filepath.Dir(p) {
			return 0, fmt.Errorf("statfs %s: %w", p, err)
		}
	}
}
