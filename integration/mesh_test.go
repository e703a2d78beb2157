package integration

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// removeAfter is the --remove-after of every host: long enough that a busy
// host is not removed by mistake, short enough for the test.
const removeAfter = 10 * time.Second

// goodHosts is the size of the mesh: five, so that removing one host still
// leaves a quorum-safe configuration and the voter count changes visibly.
const goodHosts = 5

// TestMeshAcrossHosts runs real tbfg-node processes in network namespaces that
// find each other by mDNS with nothing configured but the secret, and checks
// leader failover, removal and rejoin of a cut-off host, a clean leave, and
// that a host with the wrong secret never gets in.
func TestMeshAcrossHosts(t *testing.T) {
	c := newCluster(t,
		"--raft-profile", raftProfile(),
		"--remove-after", removeAfter.String(),
		"--gossip-interval", "1s",
		"--log-level", "info")
	for range goodHosts + 1 {
		c.addHost()
	}
	good, intruder := c.hosts[:goodHosts], c.hosts[goodHosts]
	ids := map[*host]string{}

	if !t.Run("form", func(t *testing.T) { formMesh(t, good, ids, nil) }) {
		return
	}
	t.Run("wrong-secret", func(t *testing.T) { startIntruder(t, intruder, good) })
	live := slices.Clone(good)
	if !t.Run("link-down", func(t *testing.T) { cutAndRestore(t, live, ids) }) {
		return
	}
	var dead *host
	if !t.Run("kill-leader", func(t *testing.T) { live, dead = killLeader(t, live, ids) }) {
		return
	}
	if !t.Run("restart", func(t *testing.T) { live = restart(t, live, dead, ids) }) {
		return
	}
	if !t.Run("leave", func(t *testing.T) { live = leaveOne(t, live, ids) }) {
		return
	}
	t.Run("invariants", func(t *testing.T) { checkInvariants(t, c, live, intruder, ids) })
	t.Run("sigterm", func(t *testing.T) {
		for _, h := range live {
			if err := h.signal(syscall.SIGTERM, 30*time.Second); err != nil {
				t.Errorf("%s: SIGTERM: %v; want a clean exit", h.name, err)
			}
		}
	})
}

// formThree adds three hosts to c and forms a mesh of them by init and join
// (formMesh, as the subtest "form"). It returns the hosts and their peer
// IDs; ok is false when forming failed, and the subtest has then said why.
func formThree(t *testing.T, c *cluster) (hosts []*host, ids map[*host]string, ok bool) {
	t.Helper()
	for range 3 {
		c.addHost()
	}
	hosts, ids = c.hosts, map[*host]string{}
	ok = t.Run("form", func(t *testing.T) { formMesh(t, hosts, ids, nil) })
	return hosts, ids, ok
}

// formMesh runs init on the first host and join --secret on the others, each
// with the arguments extra gives it (nil: none), and waits until every host
// lists all of them with one leader and their gossip.
func formMesh(t *testing.T, good []*host, ids map[*host]string, extra func(*host) []string) {
	args := func(h *host, sub ...string) []string {
		if extra == nil {
			return sub
		}
		return append(sub, extra(h)...)
	}
	first := good[0]
	first.start(t, "init", args(first)...)
	waitRunning(t, first)
	waitFor(t, 30*time.Second, "h1 leads its new mesh", func() error {
		st, err := first.status()
		if err == nil && st.Leader != st.ID {
			err = fmt.Errorf("leader %q, want itself %q", st.Leader, st.ID)
		}
		return err
	})
	secret := readSecret(t, first)
	if !first.out.contains("tbfg-node join --secret " + secret) {
		t.Errorf("init did not print the line %q", "tbfg-node join --secret "+secret)
	}
	for _, h := range good[1:] {
		h.start(t, "join", args(h, "--secret", secret)...)
	}
	for _, h := range good {
		ids[h] = waitRunning(t, h).ID
	}
	waitFor(t, 90*time.Second, "one mesh of all good hosts", func() error {
		return agree(good, idsOf(good, ids), true)
	})
}

// waitRunning waits until h's node is a member and returns its status.
func waitRunning(t *testing.T, h *host) statusJSON {
	t.Helper()
	var st statusJSON
	waitFor(t, 90*time.Second, h.name+" running", func() error {
		if !h.running() {
			return errors.New("process exited")
		}
		var err error
		if st, err = h.status(); err != nil {
			return err
		}
		if st.State != "running" || st.ID == "" {
			return fmt.Errorf("state %q", st.State)
		}
		return nil
	})
	return st
}

// readSecret reads the secret init stored, checking the file's mode.
func readSecret(t *testing.T, h *host) string {
	t.Helper()
	path := filepath.Join(h.dataDir, "mesh.secret")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s mode %v, want 0600", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSpace(b))
}

// startIntruder starts a host that joins with a secret of its own. mDNS
// alone would never lead it to the others (the service name derives from the
// secret), so it is given their addresses with --peer: it dials them but must
// never complete a connection. The final invariants check that no host ever
// listed it.
func startIntruder(t *testing.T, h *host, good []*host) {
	args := []string{"--secret", strings.Repeat("5a", 32)}
	for _, g := range good {
		st, err := g.status()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range st.Addresses {
			args = append(args, "--peer", a)
		}
	}
	h.start(t, "join", args...)
	waitFor(t, 30*time.Second, h.name+" (wrong secret) answers status", func() error {
		st, err := h.status()
		if err != nil {
			return err
		}
		if st.State == "running" {
			t.Fatalf("%s with the wrong secret became a member", h.name)
		}
		return nil
	})
}

// cutAndRestore sets the link of a host that does not lead down, waits until
// the others removed it, sets the link up and waits until it is back.
func cutAndRestore(t *testing.T, live []*host, ids map[*host]string) {
	victim := nonLeader(t, live, ids)
	t.Logf("cutting %s (%s) off the network", victim.name, ids[victim])
	if err := victim.ns.SetLink(false); err != nil {
		t.Fatal(err)
	}
	rest := without(live, victim)
	waited := waitFor(t, removeAfter+30*time.Second, victim.name+" removed by the others", func() error {
		return agree(rest, idsOf(rest, ids), false)
	})
	checkNotEarly(t, waited)
	if err := victim.ns.SetLink(true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 90*time.Second, victim.name+" back in the mesh", func() error {
		return agree(live, idsOf(live, ids), true)
	})
}

// checkNotEarly fails the test if a silent node was removed sooner than
// --remove-after allows: it may have gossiped last up to a gossip interval
// (1s) before it fell silent, and polling only delays what is seen.
func checkNotEarly(t *testing.T, waited time.Duration) {
	t.Helper()
	if waited < removeAfter-2*time.Second {
		t.Errorf("silent node removed after %s, before --remove-after %s", waited, removeAfter)
	}
}

// killLeader kills the leader with SIGKILL and waits for a new leader that
// every survivor agrees on, then for the dead node's removal. It returns the
// survivors and the dead host.
func killLeader(t *testing.T, live []*host, ids map[*host]string) ([]*host, *host) {
	leader := leaderOf(t, live, ids)
	t.Logf("killing the leader %s (%s)", leader.name, ids[leader])
	leader.kill()
	killed := time.Now()
	rest := without(live, leader)
	waitFor(t, 30*time.Second, "new leader after kill -9", func() error {
		vs, err := views(rest)
		if err != nil {
			return err
		}
		l, err := commonLeader(vs)
		if err != nil {
			return err
		}
		if l == ids[leader] {
			return errors.New("survivors still follow the dead leader")
		}
		return sameConfiguration(vs)
	})
	waitFor(t, removeAfter+30*time.Second, "dead leader removed", func() error {
		return agree(rest, idsOf(rest, ids), false)
	})
	checkNotEarly(t, time.Since(killed))
	return rest, leader
}

// restart runs the killed host again with `tbfg-node run`, as after a
// reboot: it must get back into the mesh it was removed from, with its
// identity.
func restart(t *testing.T, live []*host, h *host, ids map[*host]string) []*host {
	h.start(t, "run")
	if st := waitRunning(t, h); st.ID != ids[h] {
		t.Fatalf("%s restarted as %s, was %s", h.name, st.ID, ids[h])
	}
	all := append(slices.Clone(live), h)
	waitFor(t, 90*time.Second, h.name+" back after restart", func() error {
		return agree(all, idsOf(all, ids), true)
	})
	return all
}

// leaveOne makes a host that does not lead leave with `tbfg-node leave`: its
// process exits cleanly and the others drop it well before removeAfter.
func leaveOne(t *testing.T, live []*host, ids map[*host]string) []*host {
	h := nonLeader(t, live, ids)
	if out, err := h.cli("leave"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if err := h.signal(0, 30*time.Second); err != nil {
		t.Errorf("%s after leave: %v; want exit status 0", h.name, err)
	}
	rest := without(live, h)
	waited := waitFor(t, removeAfter, h.name+" gone after leave", func() error {
		return agree(rest, idsOf(rest, ids), false)
	})
	t.Logf("configuration without %s after %s (remove-after is %s)", h.name, waited, removeAfter)
	return rest
}

// checkInvariants checks what must hold at the end of the run.
func checkInvariants(t *testing.T, c *cluster, live []*host, intruder *host, ids map[*host]string) {
	if err := agree(live, idsOf(live, ids), true); err != nil {
		t.Error(err)
	}
	known := map[string]bool{}
	for _, id := range ids {
		known[id] = true
	}
	c.mu.Lock()
	for id, by := range c.seen {
		if !known[id] {
			t.Errorf("%s listed unknown node %s (the wrong-secret host?)", by, id)
		}
	}
	c.mu.Unlock()
	if !intruder.running() {
		t.Fatalf("%s (wrong secret) exited; it should keep looking for its mesh", intruder.name)
	}
	if st, err := intruder.status(); err == nil && st.State == "running" {
		t.Errorf("%s (wrong secret) is a member: %+v", intruder.name, st)
	}
	// Stopped, it says why it never got in, which also shows that it found
	// the others and tried.
	if err := intruder.signal(syscall.SIGTERM, 30*time.Second); err != nil {
		t.Errorf("%s: SIGTERM: %v; want a clean exit", intruder.name, err)
	}
	if !intruder.out.contains("wrong secret?") {
		t.Errorf("%s (wrong secret) never reported a rejected secret", intruder.name)
	}
}

// view is one host's answer to nodes --json and status --json.
type view struct {
	h      *host
	nodes  []nodeJSON
	leader string
}

// views asks every host for its nodes and status.
func views(hosts []*host) ([]view, error) {
	var vs []view
	for _, h := range hosts {
		nodes, err := h.nodes()
		if err != nil {
			return nil, err
		}
		st, err := h.status()
		if err != nil {
			return nil, err
		}
		vs = append(vs, view{h: h, nodes: nodes, leader: st.Leader})
	}
	return vs, nil
}

// agree checks that every host lists exactly want, with one leader they all
// name in nodes and status, the same suffrage for each node, and the voter
// count the mesh's rule gives. With gossip, every node must also carry the
// gossiped status of every member.
func agree(hosts []*host, want []string, gossip bool) error {
	vs, err := views(hosts)
	if err != nil {
		return err
	}
	if err := sameConfiguration(vs); err != nil {
		return err
	}
	for _, v := range vs {
		if err := checkView(v, want, gossip); err != nil {
			return err
		}
	}
	_, err = commonLeader(vs)
	return err
}

// checkView checks one host's list of nodes.
func checkView(v view, want []string, gossip bool) error {
	var got []string
	leaders, voters := 0, 0
	for _, n := range v.nodes {
		got = append(got, n.ID)
		if n.Leader {
			leaders++
			if n.ID != v.leader {
				return fmt.Errorf("%s: nodes marks %s leader, status names %q", v.h.name, n.ID, v.leader)
			}
		}
		if n.Suffrage == "voter" {
			voters++
		} else if n.Suffrage != "nonvoter" {
			return fmt.Errorf("%s: node %s has suffrage %q", v.h.name, n.ID, n.Suffrage)
		}
		if gossip && (n.LastSeen == nil || !slices.Contains(n.Systems, nativeSystem())) {
			return fmt.Errorf("%s: no gossip from %s yet (last_seen %v, systems %v)", v.h.name, n.ID, n.LastSeen, n.Systems)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		return fmt.Errorf("%s lists %v, want %v", v.h.name, got, want)
	}
	if leaders != 1 {
		return fmt.Errorf("%s lists %d leaders", v.h.name, leaders)
	}
	if n := wantVoters(len(want)); voters != n {
		return fmt.Errorf("%s lists %d voters among %d nodes, want %d", v.h.name, voters, len(want), n)
	}
	return nil
}

// sameConfiguration checks that every host lists the same nodes with the
// same suffrage.
func sameConfiguration(vs []view) error {
	var first string
	for i, v := range vs {
		var conf []string
		for _, n := range v.nodes {
			conf = append(conf, n.ID+"="+n.Suffrage)
		}
		slices.Sort(conf)
		s := strings.Join(conf, " ")
		if i == 0 {
			first = s
		} else if s != first {
			return fmt.Errorf("%s sees configuration %s, %s sees %s", vs[0].h.name, first, v.h.name, s)
		}
	}
	return nil
}

// commonLeader returns the leader every host's status names.
func commonLeader(vs []view) (string, error) {
	for _, v := range vs {
		if v.leader == "" {
			return "", fmt.Errorf("%s knows no leader", v.h.name)
		}
		if v.leader != vs[0].leader {
			return "", fmt.Errorf("%s follows %s, %s follows %s", vs[0].h.name, vs[0].leader, v.h.name, v.leader)
		}
	}
	return vs[0].leader, nil
}

// wantVoters is the mesh's rule: 1 voter below 3 nodes, 3 at 3–4, 5 from 5.
func wantVoters(n int) int {
	switch {
	case n < 3:
		return 1
	case n < 5:
		return 3
	}
	return 5
}

// raftProfile is the --raft-profile of every host. Not lan: on a busy
// 2-core CI machine (and under the race detector) six processes miss lan's
// 250 ms leader lease and leadership flaps.
func raftProfile() string { return "default" }

func nativeSystem() string {
	if runtime.GOARCH == "amd64" {
		return "x86_64-linux"
	}
	return runtime.GOARCH + "-linux"
}

// leaderOf waits until every host names the same leader, one of them, and
// returns it; leadership may be moving when it is called.
func leaderOf(t *testing.T, hosts []*host, ids map[*host]string) *host {
	t.Helper()
	var leader *host
	waitFor(t, 60*time.Second, "one leader that all hosts name", func() error {
		vs, err := views(hosts)
		if err != nil {
			return err
		}
		l, err := commonLeader(vs)
		if err != nil {
			return err
		}
		for _, h := range hosts {
			if ids[h] == l {
				leader = h
				return nil
			}
		}
		return fmt.Errorf("leader %s is none of the hosts", l)
	})
	return leader
}

func nonLeader(t *testing.T, hosts []*host, ids map[*host]string) *host {
	t.Helper()
	l := leaderOf(t, hosts, ids)
	for i := len(hosts) - 1; i >= 0; i-- {
		if hosts[i] != l {
			return hosts[i]
		}
	}
	t.Fatal("no host but the leader")
	return nil
}

func without(hosts []*host, h *host) []*host {
	return slices.DeleteFunc(slices.Clone(hosts), func(x *host) bool { return x == h })
}

func idsOf(hosts []*host, ids map[*host]string) []string {
	var out []string
	for _, h := range hosts {
		out = append(out, ids[h])
	}
	slices.Sort(out)
	return out
}
