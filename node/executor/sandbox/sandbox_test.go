package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tbfg/tbfg-node/internal/citest"
)

// requireRoot skips a test that needs root, failing it under CI but in its
// unprivileged pass.
func requireRoot(t *testing.T) {
	t.Helper()
	citest.Root(t, "builds as other users")
}

// testIDs are the build ids of these tests, apart from the default range.
var testIDs = IDRange{First: DefaultIDs.First + 0x20000, Count: 4}

// busybox is the shell the test builds run.
const busybox = "/bin/busybox"

// build is one test build: a store with one input item, and a spec that
// runs script with busybox as /bin/sh.
type build struct {
	spec  *Spec
	input string // the input's real directory
}

// newBuild lays out a build below dir, owned by uid and gid.
func newBuild(t testing.TB, dir string, uid, gid int, script string) *build {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(dir, "store")
	input := filepath.Join(store, "00000000000000000000000000000000-input")
	scratch := filepath.Join(dir, "scratch")
	top := filepath.Join(scratch, "top")
	for _, d := range []string{store, input, scratch, top} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(input, "data"), []byte("original\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{store, input, filepath.Join(input, "data"), scratch, top} {
		if err := os.Lchown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return &build{input: input, spec: &Spec{
		Scratch: scratch, BuildDir: top, BuildDirInside: "/build",
		StoreDir: "/gnu/store", RealStore: store,
		Inputs:  []string{filepath.Base(input)},
		Outputs: []string{"11111111111111111111111111111111-out"},
		Paths:   []Mount{{Inside: "/bin/sh", Host: busybox}},
		Builder: "/bin/sh", Args: []string{"-c", script},
		Env: []string{"out=/gnu/store/11111111111111111111111111111111-out", "input=/gnu/store/" + filepath.Base(input)},
	}}
}

// whoScript writes what the builder is and may do to $out. Its signals to
// the helper, PID 1, are ignored: were they not, the build would end there.
const whoScript = `set -e
for sig in TERM HUP INT QUIT USR1 PIPE; do kill -$sig 1 2>/dev/null || :; done
mkdir $out
id -u > $out/uid
cat /proc/self/uid_map > $out/uid_map
if echo tampered >> $input/data; then echo escaped > $out/input; else echo denied > $out/input; fi
chmod 4755 $out/uid
`

// TestRunAsRoot runs a build as a root node does: the builder is an id of
// the pool, the input stays as it was although its file is writable by
// that id, and the output is the node's afterwards.
func TestRunAsRoot(t *testing.T) {
	requireRoot(t)
	s, err := New(Config{IDs: testIDs, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	b := newBuild(t, dir, int(testIDs.First), int(testIDs.First), whoScript)
	var log bytes.Buffer
	if err := s.Run(context.Background(), b.spec, Limits{}, &log); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	out := b.spec.OutputPath(b.spec.Outputs[0])
	checkOutput(t, out, func(uidMap string) error {
		var inside, host, n uint32
		if _, err := fmt.Sscan(uidMap, &inside, &host, &n); err != nil || inside != insideUID || n != 1 ||
			host < testIDs.First || host > testIDs.Last() {
			return fmt.Errorf("uid_map %q: want 1000 mapped to one id of %s", uidMap, testIDs)
		}
		return nil
	})
	checkInput(t, b.input)
}

// checkOutput checks the output of whoScript: the builder's uid, its map
// (by checkMap), that it could not write the input, and that the output
// belongs to the node now, without the setuid bit the builder set.
func checkOutput(t *testing.T, out string, checkMap func(string) error) {
	t.Helper()
	read := func(name string) string {
		data, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(data))
	}
	if uid := read("uid"); uid != "1000" {
		t.Errorf("builder's uid %s, want 1000", uid)
	}
	if err := checkMap(read("uid_map")); err != nil {
		t.Error(err)
	}
	if got := read("input"); got != "denied" {
		t.Errorf("writing the input: %s", got)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(out, "uid"), &st); err != nil {
		t.Fatal(err)
	}
	if int(st.Uid) != os.Geteuid() || int(st.Gid) != os.Getegid() || st.Mode&unix.S_ISUID != 0 {
		t.Errorf("output file owned by %d:%d, mode %o; want %d:%d without setuid", st.Uid, st.Gid, st.Mode, os.Geteuid(), os.Getegid())
	}
}

func checkInput(t *testing.T, input string) {
	t.Helper()
	if data, err := os.ReadFile(filepath.Join(input, "data")); err != nil || string(data) != "original\n" {
		t.Errorf("input now holds %q, %v", data, err)
	}
}

// TestConcurrentBuildsDistinctIDs runs builds at once and checks that no two
// share a host id.
func TestConcurrentBuildsDistinctIDs(t *testing.T) {
	requireRoot(t)
	s, err := New(Config{IDs: testIDs, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	maps := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		b := newBuild(t, t.TempDir(), 0, 0, "cat /proc/self/uid_map > $out; sleep 1")
		wg.Go(func() {
			var log bytes.Buffer
			if err := s.Run(context.Background(), b.spec, Limits{}, &log); err != nil {
				t.Errorf("%v\n%s", err, log.String())
				return
			}
			data, _ := os.ReadFile(b.spec.OutputPath(b.spec.Outputs[0]))
			maps[i] = strings.Join(strings.Fields(string(data)), " ")
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, m := range maps {
		if seen[m] {
			t.Errorf("two builds ran at once with uid_map %q: %q", m, maps)
		}
		seen[m] = true
	}
}

// TestMemoryLimit checks that a memory limit is enforced, or refused by New
// where cgroup v2 has no memory controller or the node may not write a
// cgroup: never silently ignored.
func TestMemoryLimit(t *testing.T) {
	s, err := New(Config{IDs: testIDs, Dir: t.TempDir(), Memory: 32 << 20})
	if errors.Is(err, ErrNoMemoryLimit) {
		t.Logf("refused, as it should be on this machine: %v", err)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	b := newBuild(t, t.TempDir(), 0, 0, "dd if=/dev/zero of=/dev/shm/fill bs=1M count=128; echo survived > $out")
	var log bytes.Buffer
	if err := s.Run(context.Background(), b.spec, Limits{}, &log); !errors.Is(err, ErrOutOfMemory) {
		t.Fatalf("Run = %v, want ErrOutOfMemory\n%s", err, log.String())
	}
}

// TestUnprivilegedNode runs a build from a node that is not root, as an
// ordinary user of the host: the builder maps to the node's uid, and still
// cannot write its input although the file is the node's. Run as root, it
// runs the node as another user; run as an ordinary user (CI's unprivileged
// pass), it is that node.
func TestUnprivilegedNode(t *testing.T) {
	if os.Geteuid() != 0 {
		unprivilegedNode(t)
		return
	}
	uid := int(DefaultIDs.First + 0x30000)
	dir := userDir(t, uid)
	attr := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	t.Logf("child:\n%s", runChild(t, "TestUnprivilegedChild", dir, attr, "TBFG_TEST_UNPRIVILEGED=1"))
}

// TestUnprivilegedChild is TestUnprivilegedNode's node, run as another user.
func TestUnprivilegedChild(t *testing.T) {
	if os.Getenv("TBFG_TEST_UNPRIVILEGED") == "" {
		t.Skip("run by TestUnprivilegedNode")
	}
	unprivilegedNode(t)
}

// unprivilegedNode builds as a node that is not root.
func unprivilegedNode(t *testing.T) {
	s, err := New(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	b := newBuild(t, filepath.Join(t.TempDir(), "b"), os.Getuid(), os.Getgid(), whoScript)
	var log bytes.Buffer
	if err := s.Run(context.Background(), b.spec, Limits{}, &log); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	checkOutput(t, b.spec.OutputPath(b.spec.Outputs[0]), func(uidMap string) error {
		if strings.Join(strings.Fields(uidMap), " ") != "1000 0 1" {
			return fmt.Errorf("uid_map %q: want 1000 mapped to the helper's 0, the node's uid", uidMap)
		}
		return nil
	})
	checkInput(t, b.input)
	// The builder shares the node's uid, hence the helper's: only the
	// helper's namespaces keep it from the helper.
	runEscapes(t, s, os.Getuid(), os.Getgid())
}

// TestRefusedAtStart checks that a node whose kernel refuses user
// namespaces fails at New, saying so, rather than building with less
// isolation. The node runs in a user namespace whose limit of nested user
// namespaces is 0.
func TestRefusedAtStart(t *testing.T) {
	requireRoot(t)
	dir := userDir(t, 0)
	ids := []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1},
		{ContainerID: int(testIDs.First), HostID: int(testIDs.First), Size: int(testIDs.Count)}}
	attr := &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER, UidMappings: ids, GidMappings: ids}
	out := runChild(t, "TestRefusedChild", dir, attr, "TBFG_TEST_REFUSE=1")
	t.Logf("child:\n%s", out)
	if !strings.Contains(out, "user namespace") {
		t.Errorf("the refusal does not name user namespaces:\n%s", out)
	}
}

// TestRefusedChild is TestRefusedAtStart's node.
func TestRefusedChild(t *testing.T) {
	if os.Getenv("TBFG_TEST_REFUSE") == "" {
		t.Skip("run by TestRefusedAtStart")
	}
	if err := writeFile("/proc/sys/user/max_user_namespaces", "0"); err != nil {
		t.Fatal(err)
	}
	_, err := New(Config{IDs: testIDs, Dir: t.TempDir(), LockDir: t.TempDir()})
	if err == nil {
		t.Fatal("New succeeded without user namespaces")
	}
	t.Logf("New: %v", err)
}

// userDir makes a directory for a child process of owner uid, with a copy
// of this test binary that uid may execute.
func userDir(t *testing.T, uid int) string {
	dir, err := os.MkdirTemp("", "tbfg-sandbox-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "test"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runChild runs test name of the copy of this binary in dir, with attr and
// env, and returns its output; it fails t if the child test fails.
func runChild(t *testing.T, name, dir string, attr *syscall.SysProcAttr, env ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(dir, "test"), "-test.run=^"+name+"$", "-test.v", "-test.count=1")
	cmd.Env = append([]string{"TMPDIR=" + filepath.Join(dir, "tmp"), "PATH=/usr/bin:/bin"}, env...)
	cmd.Dir = dir
	cmd.SysProcAttr = attr
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+name) {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
	return string(out)
}

// TestErrorsNameTheStep checks that what fails is told apart and named: a
// builder that cannot be executed is the build's fault (ErrExec), a
// sandbox that cannot be made is the node's (ErrSetup), each with the step
// and the path.
func TestErrorsNameTheStep(t *testing.T) {
	requireRoot(t)
	s, err := New(Config{IDs: testIDs, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		change func(*Spec)
		want   error
		text   string
	}{
		{"missing builder", func(sp *Spec) { sp.Builder = "/no/such/builder" }, ErrExec,
			"cannot execute builder: execute builder /no/such/builder: no such file or directory"},
		{"missing sandbox path", func(sp *Spec) { sp.Paths = append(sp.Paths, Mount{Inside: "/opt/x", Host: "/no/such/path"}) }, ErrSetup,
			"sandbox: sandbox path /opt/x=/no/such/path: stat /no/such/path: no such file or directory"},
		{"sandbox path above the root", func(sp *Spec) { sp.Paths = append(sp.Paths, Mount{Inside: "../x", Host: busybox}) }, ErrSetup,
			"not below the root"},
		{"sandbox path through a symlink", func(sp *Spec) {
			sp.Paths = append(sp.Paths, Mount{Inside: "/dev/fd/x", Host: busybox})
		}, ErrSetup, "sandbox path /dev/fd/x=/bin/busybox: /dev/fd is a symlink"},
		{"missing input", func(sp *Spec) { sp.Inputs = append(sp.Inputs, "22222222222222222222222222222222-gone") }, ErrSetup,
			"store item 22222222222222222222222222222222-gone: lstat "},
		{"NUL in an argument", func(sp *Spec) { sp.Args = append(sp.Args, "a\x00b") }, ErrSetup, "holds a NUL byte"},
		{"builder fails", func(sp *Spec) { sp.Args = []string{"-c", "exit 3"} }, nil, "exit status 3"},
		{"builder killed", func(sp *Spec) { sp.Args = []string{"-c", "kill -9 $$"} }, nil, "killed by signal killed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBuild(t, t.TempDir(), 0, 0, ": > $out")
			c.change(b.spec)
			err := s.Run(context.Background(), b.spec, Limits{}, nil)
			if err == nil || (c.want != nil && !errors.Is(err, c.want)) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("Run = %v, want %v containing %q", err, c.want, c.text)
			}
			t.Log(err)
		})
	}
}

// TestHelperRefusesBadSpec gives the helper specs it must refuse before it
// touches anything, and checks that it says so as a setup failure.
func TestHelperRefusesBadSpec(t *testing.T) {
	requireRoot(t)
	s, err := New(Config{IDs: testIDs, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	good, err := (&helperSpec{Root: "/r", View: "/v", Staging: "/s", Tmp: "/t", RealStore: "/rs", StoreTarget: "/r/gnu/store",
		BuildDir: "/b", BuildDirInside: "/build", BuildDirTarget: "/r/build", Builder: "/bin/sh", Argv: []string{"sh"}}).encode()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, spec, want string
	}{
		{"empty", "", "not NUL-terminated key and value pairs"},
		{"no final NUL", "root\x00/r", "not NUL-terminated key and value pairs"},
		{"key without value", "root\x00", "key root without a value"},
		{"unknown key", "colour\x00blue\x00", "bad field colour=blue"},
		{"number that is not", "uid\x00ten\x00", "bad field uid=ten"},
		{"field missing", "root\x00/r\x00", "a field is missing"},
		{"mount without place", string(good) + "mount-host\x00/bin\x00", "mount-host /bin without mount-rel"},
		{"place without mount", string(good) + "mount-rel\x00bin\x00", "bad field mount-rel=bin"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := s.runRawSpec([]byte(c.spec))
			if !errors.Is(err, ErrSetup) || !strings.Contains(err.Error(), "read sandbox spec: "+c.want) {
				t.Fatalf("helper said %v, want a setup error: read sandbox spec: %s", err, c.want)
			}
		})
	}
}

// runRawSpec runs the helper with spec as it is on its descriptor.
func (s *Sandbox) runRawSpec(spec []byte) error {
	fd, err := unix.MemfdCreate("spec", unix.MFD_CLOEXEC)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), "spec")
	defer f.Close()
	if _, err := f.Write(spec); err != nil {
		return err
	}
	if _, err := f.Seek(0, 0); err != nil {
		return err
	}
	cmd := s.command(nil, false)
	status, _, err := supervise(context.Background(), cmd, f, nil, Limits{}, nil)
	if err != nil {
		return err
	}
	return parseStatus(status, cmd.ProcessState)
}
