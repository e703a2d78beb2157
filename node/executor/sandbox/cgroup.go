package sandbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// buildCgroupPrefix starts the name of each build's cgroup, followed by the
// node's PID and a sequence number, so that New can remove the empty
// cgroups a dead node left.
const buildCgroupPrefix = "tbfg-build-"

// cgroups makes one cgroup v2 directory per build below dir, the node's own
// cgroup (or the leaf it moved itself to), with the memory limit if any.
type cgroups struct {
	dir    string
	memory int64 // memory.max of each build; 0 for none
	seq    atomic.Uint64
}

// buildCgroup is one build's cgroup.
type buildCgroup struct {
	dir string
	fd  int // the open directory, for clone3's CLONE_INTO_CGROUP
}

// findCgroup returns the directory of this process's cgroup in the cgroup
// v2 hierarchy, or an error saying why there is none.
func findCgroup() (string, error) {
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	mnt := cgroup2Mount(mounts)
	if mnt == "" {
		return "", errors.New("no cgroup v2 hierarchy is mounted")
	}
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	rel, ok := unifiedPath(self)
	if !ok {
		return "", errors.New("/proc/self/cgroup names no cgroup v2 path")
	}
	return filepath.Join(mnt, rel), nil
}

// cgroup2Mount returns the mount point of the first cgroup2 file system
// mounted at its root in mountinfo, or "".
func cgroup2Mount(mountinfo []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(mountinfo))
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE SUPEROPTIONS
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if ok && len(f) >= 5 && len(g) >= 1 && g[0] == "cgroup2" && f[3] == "/" {
			return unescapeMountinfo(f[4])
		}
	}
	return ""
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of a path
// in mountinfo.
func unescapeMountinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unifiedPath returns the cgroup v2 path in /proc/self/cgroup: the line
// "0::PATH".
func unifiedPath(procCgroup []byte) (string, bool) {
	for line := range strings.SplitSeq(string(procCgroup), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok && strings.HasPrefix(p, "/") {
			return p, true
		}
	}
	return "", false
}

// newCgroups prepares build cgroups below the node's own cgroup. Without a
// usable cgroup v2 directory it returns nil and says why in none, unless a
// memory limit is asked for, which is then an error.
func newCgroups(memory int64) (cg *cgroups, none string, err error) {
	dir, err := findCgroup()
	if err == nil {
		err = checkWritable(dir)
	}
	if err != nil {
		if memory > 0 {
			return nil, "", fmt.Errorf("%w: it needs a cgroup v2 directory this node may write: %w", ErrNoMemoryLimit, err)
		}
		return nil, err.Error(), nil
	}
	removeStaleCgroups(dir)
	if memory > 0 {
		if dir, err = enableMemory(dir); err != nil {
			return nil, "", err
		}
	}
	return &cgroups{dir: dir, memory: memory}, "", nil
}

// checkWritable creates and removes a cgroup below dir.
func checkWritable(dir string) error {
	probe := filepath.Join(dir, fmt.Sprintf("%sprobe-%d", buildCgroupPrefix, os.Getpid()))
	if err := os.Mkdir(probe, 0o755); err != nil {
		return fmt.Errorf("create a cgroup in %s: %w", dir, err)
	}
	return os.Remove(probe)
}

// removeStaleCgroups removes the build cgroups of nodes that are no longer
// running. A cgroup that still holds processes cannot be removed and stays.
func removeStaleCgroups(dir string) {
	old, _ := filepath.Glob(filepath.Join(dir, buildCgroupPrefix+"*"))
	for _, d := range old {
		pidText, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(d), buildCgroupPrefix), "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() || unix.Kill(pid, 0) == nil {
			continue
		}
		os.Remove(d)
	}
}

// enableMemory makes the memory controller available to the children of
// dir. A cgroup with processes of its own cannot hand controllers down, so
// when the node is alone in dir it first moves itself into a leaf, as a
// service with a delegated cgroup does. It returns the directory in which
// build cgroups are made.
func enableMemory(dir string) (string, error) {
	ctrl, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoMemoryLimit, err)
	}
	if !slices.Contains(strings.Fields(string(ctrl)), "memory") {
		return "", fmt.Errorf("%w: the cgroup v2 hierarchy offers no memory controller in %s (it offers %q); "+
			"it may be bound to cgroup v1", ErrNoMemoryLimit, dir, strings.TrimSpace(string(ctrl)))
	}
	err = writeFile(filepath.Join(dir, "cgroup.subtree_control"), "+memory")
	if errors.Is(err, unix.EBUSY) && aloneIn(dir) {
		leaf := filepath.Join(dir, "tbfg-node")
		if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("%w: %w", ErrNoMemoryLimit, err)
		}
		if err := writeFile(filepath.Join(leaf, "cgroup.procs"), strconv.Itoa(os.Getpid())); err != nil {
			return "", fmt.Errorf("%w: move the node into %s: %w", ErrNoMemoryLimit, leaf, err)
		}
		err = writeFile(filepath.Join(dir, "cgroup.subtree_control"), "+memory")
	}
	if err != nil {
		return "", fmt.Errorf("%w: enable the memory controller in %s: %w "+
			"(the node needs a cgroup of its own, e.g. systemd's Delegate=yes)", ErrNoMemoryLimit, dir, err)
	}
	return dir, nil
}

// aloneIn reports whether this process is the only one in cgroup dir.
func aloneIn(dir string) bool {
	procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	return err == nil && strings.TrimSpace(string(procs)) == strconv.Itoa(os.Getpid())
}

// create makes the cgroup of one build.
func (c *cgroups) create() (*buildCgroup, error) {
	name := fmt.Sprintf("%s%d-%d", buildCgroupPrefix, os.Getpid(), c.seq.Add(1))
	dir := filepath.Join(c.dir, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create build cgroup: %w", err)
	}
	cg := &buildCgroup{dir: dir, fd: -1}
	if c.memory > 0 {
		if err := writeFile(filepath.Join(dir, "memory.max"), strconv.FormatInt(c.memory, 10)); err != nil {
			cg.remove()
			return nil, fmt.Errorf("set build memory limit: %w", err)
		}
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		cg.remove()
		return nil, fmt.Errorf("open build cgroup: %w", err)
	}
	cg.fd = fd
	return cg, nil
}

// kill kills every process in the cgroup at once (Linux 5.14 and later;
// before that, killing the PID namespace's init does it).
func (cg *buildCgroup) kill() {
	writeFile(filepath.Join(cg.dir, "cgroup.kill"), "1")
}

// oomKilled reports whether the memory limit killed a process of the build.
func (cg *buildCgroup) oomKilled() bool {
	data, err := os.ReadFile(filepath.Join(cg.dir, "memory.events"))
	if err != nil {
		return false
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if n, ok := strings.CutPrefix(line, "oom_kill "); ok && n != "0" {
			return true
		}
	}
	return false
}

// remove removes the cgroup, which is empty once the build's PID namespace
// is gone: its init exits only after every other process of it.
func (cg *buildCgroup) remove() error {
	if cg.fd >= 0 {
		unix.Close(cg.fd)
		cg.fd = -1
	}
	if err := os.Remove(cg.dir); err != nil {
		return fmt.Errorf("remove build cgroup: %w", err)
	}
	return nil
}

// writeFile writes s to an existing file, as cgroup files want: in one
// write, reporting the write's error.
func writeFile(name, s string) error {
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = io.WriteString(f, s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
