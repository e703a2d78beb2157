package sandbox

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// escapes are what a hostile builder tries, each a shell command that must
// fail in the sandbox.
var escapes = []struct{ name, cmd string }{
	{"write its input", `echo x >> $input/data`},
	{"write the root", `: > /new`},
	{"write /etc/passwd", `echo x >> /etc/passwd`},
	{"write a sandbox path", `echo x >> /bin/sh`},
	{"mount a tmpfs", `mount -t tmpfs none /tmp`},
	{"remount the root writable", `mount -o remount,rw /`},
	{"remount its input writable", `mount -o remount,rw $input`},
	{"unmount its input", `umount -l $input`},
	{"make a user namespace", `unshare -U true`},
	{"make a user namespace as root", `unshare -r true`},
	{"make a mount namespace", `unshare -m true`},
	{"make a network namespace", `unshare -n true`},
	{"make a device node", `mknod /tmp/null c 1 3`},
	{"set the host name", `hostname evil`},
	{"chroot", `chroot / true`},
	{"read the helper's environment", `cat /proc/1/environ`},
	{"list the helper's descriptors", `ls /proc/1/fd/`},
	{"read the helper's executable", `readlink /proc/1/exe`},
	{"enter the helper's root", `ls /proc/1/root/`},
	{"read the helper's memory", `dd if=/proc/1/mem bs=1 count=1 skip=4096`},
	{"enter the helper's namespaces", `nsenter -t 1 -m -U true`},
	{"see the detached host root", `ls /.old-root`},
	{"reach the real store", `ls $realstore`},
	{"reach the scratch directory", `ls $scratch`},
}

// escapeScript runs every escape, then signals the helper, PID 1, with
// what a process may not ignore, and writes to $out/report the escapes
// that worked and to $out/fds the open descriptors of a process it starts. A stopped
// or killed helper would end the build without a status or never.
func escapeScript() string {
	var b strings.Builder
	b.WriteString("mkdir $out\nls /proc/self/fd > $out/fds\n: > $out/report\n")
	for _, e := range escapes {
		b.WriteString("if (" + e.cmd + ") >/dev/null 2>&1; then echo '" + e.name + "' >> $out/report; fi\n")
	}
	b.WriteString("kill -STOP 1 2>/dev/null; kill -KILL 1 2>/dev/null; :\n")
	return b.String()
}

// openLeak opens a host file without close-on-exec, as a descriptor the
// node inherited from whatever started it would be, and returns its
// number; the builder must not get it.
func openLeak(t *testing.T) int {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("the node's\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(secret, unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC != 0 {
		t.Fatalf("descriptor %d: flags %d, %v; want it inherited by children", fd, flags, err)
	}
	return fd
}

// runEscapes runs escapeScript in s and checks that every escape failed,
// that the helper outlived the builder's signals and that the builder had
// no descriptor but 0, 1 and 2.
func runEscapes(t *testing.T, s *Sandbox, uid, gid int) {
	t.Helper()
	leaked := openLeak(t)
	b := newBuild(t, filepath.Join(t.TempDir(), "b"), uid, gid, escapeScript())
	b.spec.Env = append(b.spec.Env, "realstore="+b.spec.RealStore, "scratch="+b.spec.Scratch)
	var log bytes.Buffer
	// A bound, so that a helper the builder managed to stop fails the test.
	if err := s.Run(context.Background(), b.spec, Limits{Timeout: 2 * time.Minute}, &log); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	out := b.spec.OutputPath(b.spec.Outputs[0])
	report, err := os.ReadFile(filepath.Join(out, "report"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(report)), "\n") {
		if line != "" {
			t.Errorf("the builder could %s", line)
		}
	}
	fds, err := os.ReadFile(filepath.Join(out, "fds"))
	if err != nil {
		t.Fatal(err)
	}
	// 3 is ls's own, reading the directory.
	if got := strings.Join(strings.Fields(string(fds)), " "); got != "0 1 2 3" {
		t.Errorf("builder's descriptors: %s, want 0 1 2 and ls's 3 (the node's inherited descriptor is %d)", got, leaked)
	}
	checkInput(t, b.input)
}

// TestBuilderCannotEscape has a hostile builder try its way out of a root
// node's sandbox.
func TestBuilderCannotEscape(t *testing.T) {
	requireRoot(t)
	s, err := New(Config{IDs: testIDs, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	runEscapes(t, s, int(testIDs.First), int(testIDs.First))
}

// TestNodeUmask runs a build from a node whose umask is 077: the builder
// still reaches /etc and its store, and makes files with umask 022, as
// under both daemons, whatever the node's umask.
func TestNodeUmask(t *testing.T) {
	requireRoot(t)
	s, err := New(Config{IDs: testIDs, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	b := newBuild(t, t.TempDir(), 0, 0, `set -e; mkdir $out; cat /etc/passwd $input/data > /dev/null; umask > $out/umask`)
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	var log bytes.Buffer
	if err := s.Run(context.Background(), b.spec, Limits{}, &log); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	data, err := os.ReadFile(filepath.Join(b.spec.OutputPath(b.spec.Outputs[0]), "umask"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(data)); got != "0022" {
		t.Errorf("builder's umask %s, want 0022", got)
	}
}

// runTampered runs the helper on a valid build's spec after tamper changed
// it, past the node's checks, and returns the helper's error and spec.
func runTampered(t *testing.T, s *Sandbox, tamper func(h *helperSpec)) (*helperSpec, error) {
	t.Helper()
	b := newBuild(t, t.TempDir(), 0, 0, ": > $out")
	l := lease{uid: testIDs.First, gid: testIDs.First}
	h, err := helperSpecFor(b.spec, l, DefaultMaxProcesses, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := prepareScratch(h, l); err != nil {
		t.Fatal(err)
	}
	tamper(h)
	spec, err := h.encode()
	if err != nil {
		t.Fatal(err)
	}
	return h, s.runRawSpec(spec)
}

// TestHelperRefusesUncleanPlace gives the helper, past the node's checks, a
// sandbox path whose place is not a clean path below the root: it must
// refuse it rather than mount outside the root.
func TestHelperRefusesUncleanPlace(t *testing.T) {
	requireRoot(t)
	s, err := New(Config{IDs: testIDs, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"../outside", "bin/../../outside", "", "bin//sh", "./bin"} {
		t.Run(rel, func(t *testing.T) {
			h, err := runTampered(t, s, func(h *helperSpec) { h.Paths[0].Rel = rel })
			if !errors.Is(err, ErrSetup) || !strings.Contains(err.Error(), "not a clean path below the root") {
				t.Fatalf("helper said %v, want a setup error: not a clean path below the root", err)
			}
			if _, err := os.Lstat(filepath.Join(h.Root, "..", "outside")); err == nil {
				t.Error("the helper made a mount point outside the root")
			}
		})
	}
}

// TestHelperRefusesBadInput gives the helper, past the node's checks, an
// input that is not a store item's base name: it must refuse it rather than
// show the builder something else of the host.
func TestHelperRefusesBadInput(t *testing.T) {
	requireRoot(t)
	s, err := New(Config{IDs: testIDs, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{"..", ".", "", "../../outside", "x/../.."} {
		t.Run(in, func(t *testing.T) {
			_, err := runTampered(t, s, func(h *helperSpec) { h.Inputs = append(h.Inputs, in) })
			if !errors.Is(err, ErrSetup) || !strings.Contains(err.Error(), "not a store item's base name") {
				t.Fatalf("helper said %v, want a setup error: not a store item's base name", err)
			}
		})
	}
}
