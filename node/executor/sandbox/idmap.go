package sandbox

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// identityMap reads a uid_map or gid_map of this process and returns the
// identity mapping of every id mapped in its user namespace: what a helper
// of a root node maps, so that it keeps every id the node has. In the
// initial namespace that is every id.
func identityMap(path string) ([]syscall.SysProcIDMap, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := parseIDMap(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// parseIDMap reads the lines "INSIDE OUTSIDE COUNT" of an id map into
// identity mappings of the INSIDE ranges.
func parseIDMap(data []byte) ([]syscall.SysProcIDMap, error) {
	var out []syscall.SysProcIDMap
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("line %q: want INSIDE OUTSIDE COUNT", sc.Text())
		}
		inside, err1 := strconv.ParseUint(f[0], 10, 32)
		_, err2 := strconv.ParseUint(f[1], 10, 32)
		count, err3 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("line %q: want INSIDE OUTSIDE COUNT", sc.Text())
		}
		out = append(out, syscall.SysProcIDMap{ContainerID: int(inside), HostID: int(inside), Size: int(count)})
	}
	return out, nil
}

// covers reports whether the mappings include every id of r.
func covers(maps []syscall.SysProcIDMap, r IDRange) bool {
	for _, m := range maps {
		if uint64(m.ContainerID) <= uint64(r.First) && uint64(r.First)+uint64(r.Count) <= uint64(m.ContainerID)+uint64(m.Size) {
			return true
		}
	}
	return false
}
