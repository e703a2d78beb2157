package integration

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// unitFile is the systemd unit users install.
const unitFile = "../contrib/systemd/tbfg-node.service"

// readUnit returns the settings of a unit file's [Service] section, each
// key with its values in order.
func readUnit(t *testing.T, file string) map[string][]string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	settings, section := map[string][]string{}, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, _ := strings.Cut(line, "=")
			settings[k] = append(settings[k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return settings
}

// confinement is a command prefix that runs the node under what the unit
// asks of systemd, as far as it can be had without systemd: the capability
// bounding set, no_new_privs, a read-only file system but for the data dir
// and /run/tbfg (ProtectSystem=strict, StateDirectory=, RuntimeDirectory=),
// no /root and /home (ProtectHome=yes), and a /dev with only the devices
// PrivateDevices=yes gives. The seccomp settings (RestrictNamespaces=,
// RestrictAddressFamilies=, ...) are not reproduced.
func confinement(t *testing.T, unit map[string][]string, dataDir string) []string {
	t.Helper()
	for k, v := range map[string]string{"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
		"PrivateDevices": "yes", "StateDirectory": "tbfg", "RuntimeDirectory": "tbfg"} {
		if got := unit[k]; !slices.Equal(got, []string{v}) {
			t.Fatalf("%s: %s=%q; this test emulates %s=%s: change both together", unitFile, k, got, k, v)
		}
	}
	capsSetting := unit["CapabilityBoundingSet"]
	if len(capsSetting) != 1 {
		t.Fatalf("%s: want one CapabilityBoundingSet=, have %q", unitFile, capsSetting)
	}
	bounding := "-all"
	for _, c := range strings.Fields(capsSetting[0]) {
		bounding += ",+" + strings.ToLower(strings.TrimPrefix(c, "CAP_"))
	}
	script := `set -e
data=$1; shift
mkdir -p /run/tbfg
dev=$(mktemp -d)
mount -t tmpfs -o mode=755,nosuid tmpfs "$dev"
for n in null zero full random urandom tty; do touch "$dev/$n"; mount --bind "/dev/$n" "$dev/$n"; done
mkdir "$dev/pts" "$dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$dev/pts"
ln -s pts/ptmx "$dev/ptmx"
mount -t tmpfs -o mode=1777 tmpfs "$dev/shm"
mount --move "$dev" /dev
rmdir "$dev"
findmnt -rn -o TARGET | while read -r m; do
  case $m in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*) ;; *) mount -o remount,bind,ro "$m" ;; esac
done
for d in "$data" /run/tbfg; do mount --bind "$d" "$d"; mount -o remount,bind,rw "$d"; done
for d in /root /home; do mount -t tmpfs -o mode=000 tmpfs "$d"; done
exec setpriv --bounding-set "$BOUNDING" --inh-caps -all --no-new-privs "$@"`
	return []string{"env", "BOUNDING=" + bounding, "unshare", "--mount", "--propagation", "private",
		"sh", "-c", script, "tbfg-confine", dataDir}
}

// TestSystemdUnitConfinedNodeBuilds runs a node under the limits of the
// systemd unit users install, through init, a restart with the unit's own
// ExecStart= command, and builds: a plain one, a fixed-output download, one
// whose builder leaves a process behind, and one that fails. So the unit's
// hardening is known to leave the builtin executor what it needs, and the
// test fails if a capability it keeps turns out to be needed.
func TestSystemdUnitConfinedNodeBuilds(t *testing.T) {
	requireTools(t, "setpriv", "util-linux", "unshare", "util-linux", "findmnt", "util-linux", "curl", "curl")
	unit := readUnit(t, unitFile)
	execStart := strings.Fields(unit["ExecStart"][0])
	if len(execStart) != 2 || execStart[1] != "run" {
		t.Fatalf("%s: ExecStart=%q, want the binary and run", unitFile, unit["ExecStart"])
	}
	c := newCluster(t, "--no-mdns", "--raft-profile", raftProfile(), "--system", nativeSystem())
	node, server := c.addHost(), c.addHost()
	node.wrap = confinement(t, unit, node.dataDir)
	url := startHTTPServer(t, server)

	node.start(t, "init")
	waitRunning(t, node)
	checkConfined(t, node, unit)

	dir := t.TempDir()
	sum := sha256.Sum256([]byte(servedFile))
	fetch := fmt.Sprintf("printf 'GET /file HTTP/1.0\\r\\n\\r\\n' | nc -w 10 %s | sed \"1,/^$(printf '\\r')\\$/d\" > $out",
		strings.Replace(strings.TrimPrefix(url, "http://"), ":", " ", 1))
	want := map[string]string{
		writeDerivation(t, dir, "plain", "echo built > $out", ""):                                    "succeeded",
		writeDerivation(t, dir, "download", fetch, hex.EncodeToString(sum[:])):                       "succeeded",
		writeDerivation(t, dir, "leaves-a-process", "(sleep 600 &); (sleep 600 &); echo > $out", ""): "succeeded",
		writeDerivation(t, dir, "fails", "echo failing; exit 3", ""):                                 "failed",
	}
	submit(t, node, "", slices.Collect(mapKeys(want))...)
	waitFor(t, 2*time.Minute, "the builds end", func() error { return buildStates(node, want) })

	// Restarted as systemd would: SIGTERM, then ExecStart's command.
	if err := node.signal(syscall.SIGTERM, time.Minute); err != nil {
		t.Fatalf("stop with SIGTERM: %v", err)
	}
	node.start(t, execStart[1])
	waitRunning(t, node)
	checkConfined(t, node, unit)
	after := writeDerivation(t, dir, "after-restart", "echo again > $out", "")
	want[after] = "succeeded"
	submit(t, node, "", after)
	waitFor(t, 2*time.Minute, "the builds end after the restart", func() error { return buildStates(node, want) })
	for drv, state := range want {
		if served := narinfoServed(t, server, node, outputOf(t, drv)); served != (state == "succeeded") {
			t.Errorf("%s: narinfo served %v, want %v", filepath.Base(drv), served, state == "succeeded")
		}
	}
}

// mapKeys yields m's keys.
func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// checkConfined checks from outside that the node process runs with the
// unit's bounding set and no_new_privs, and that the file system outside
// its data dir is read-only to it.
func checkConfined(t *testing.T, h *host, unit map[string][]string) {
	t.Helper()
	h.mu.Lock()
	pid := h.cmd.Process.Pid
	h.mu.Unlock()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	var bounding uint64
	for _, c := range strings.Fields(unit["CapabilityBoundingSet"][0]) {
		bounding |= 1 << capNumber(t, c)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		switch k {
		case "CapBnd":
			if v != fmt.Sprintf("%016x", bounding) {
				t.Errorf("node's CapBnd %s, want %016x", v, bounding)
			}
		case "NoNewPrivs":
			if v != "1" {
				t.Errorf("node's NoNewPrivs %s, want 1", v)
			}
		}
	}
	probe := fmt.Sprintf("/proc/%d/root/etc/tbfg-write-probe", pid)
	if err := os.WriteFile(probe, nil, 0o600); err == nil {
		os.Remove(probe)
		t.Errorf("the node's /etc is writable; want read-only (ProtectSystem=strict)")
	}
}

// capNumber is the number of a capability named as systemd names it
// (linux/capability.h).
func capNumber(t *testing.T, name string) uint {
	numbers := map[string]uint{"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
		"CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
		"CAP_NET_BIND_SERVICE": 10, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19, "CAP_SYS_ADMIN": 21, "CAP_SETFCAP": 31}
	n, ok := numbers[name]
	if !ok {
		t.Fatalf("capability %s: add its number to capNumber", name)
	}
	return n
}
