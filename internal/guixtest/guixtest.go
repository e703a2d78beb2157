package guixtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/internal/citest"
	"github.com/tbfg/tbfg-node/internal/testdir"
)

// Where setup.sh puts Guix.
const (
	// Guix is the guix command.
	Guix = "/opt/guix/bin/guix"
	// Socket is the daemon's socket.
	Socket = "/var/guix/daemon-socket/socket"
)

// Require returns the guix command once guix-daemon answers on Socket, or
// skips tb (failing it under CI=true where the setup script exists).
func Require(tb testing.TB) string {
	tb.Helper()
	setup, shared := setupScript()
	if _, err := os.Stat(Guix); err != nil && !shared {
		tb.Skip("skipping: needs the real Guix in /opt/guix, built by ../shared/guix/setup.sh, " +
			"and neither is on this machine (Debian 12 has no guix package), so even CI=true skips")
	}
	err := ready()
	if err == nil {
		return Guix
	}
	if !shared {
		setup = "../shared/guix/setup.sh"
	}
	citest.Missing(tb, "real Guix not ready (%v): run `bash %s` as root", err, setup)
	return ""
}

// ready checks that the guix command exists and that a daemon accepts
// connections on the socket.
func ready() error {
	if _, err := os.Stat(Guix); err != nil {
		return err
	}
	c, err := net.Dial("unix", Socket)
	if err != nil {
		return fmt.Errorf("guix-daemon: %w", err)
	}
	return c.Close()
}

// setupScript is ../shared/guix/setup.sh next to the repository holding the
// working directory, and whether its directory exists.
func setupScript() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
	shared := filepath.Join(filepath.Dir(dir), "shared", "guix")
	if fi, err := os.Stat(shared); err != nil || !fi.IsDir() {
		return "", false
	}
	return filepath.Join(shared, "setup.sh"), true
}

// Substituter runs `guix substitute`, the program guix-daemon runs to
// check and fetch substitutes, as the daemon does, but with its own ACL and
// narinfo cache instead of the machine's (/etc/guix/acl is left alone).
type Substituter struct {
	tb   testing.TB
	guix string
	env  []string
}

// NewSubstituter returns a Substituter of guix that trusts the keys of acl
// (the text of an ACL file) and fetches from the substitute server url.
func NewSubstituter(tb testing.TB, guix, url string, acl []byte) *Substituter {
	tb.Helper()
	conf, cache := tb.TempDir(), tb.TempDir()
	if err := os.WriteFile(filepath.Join(conf, "acl"), acl, 0o644); err != nil {
		tb.Fatal(err)
	}
	env := append(os.Environ(),
		"GUIX_CONFIGURATION_DIRECTORY="+conf, // the ACL is its acl file
		"XDG_CACHE_HOME="+cache,              // the narinfo cache, for root too
		"_NIX_OPTIONS=substitute-urls="+url+"\n",
	)
	return &Substituter{tb: tb, guix: guix, env: env}
}

// Offered returns those of paths that guix substitute offers to substitute:
// a narinfo was found whose signature is by a key of the ACL.
func (s *Substituter) Offered(paths ...string) []string {
	s.tb.Helper()
	return s.run("--query", "have "+strings.Join(paths, " "))
}

// Fetch has guix substitute download p, check its NAR against the
// narinfo's NarHash and unpack it, and returns its reply ("success
// sha256:<nix32> <NarSize>" when all went well) and where it unpacked p.
func (s *Substituter) Fetch(p string) (reply, dest string) {
	s.tb.Helper()
	dest = filepath.Join(testdir.New(s.tb), "item") // read-only once unpacked
	return strings.Join(s.run("--substitute", "substitute "+p+" "+dest), "\n"), dest
}

// run sends one command to `guix substitute MODE` and returns the lines it
// replied on file descriptor 4, where the daemon reads its replies.
func (s *Substituter) run(mode, command string) []string {
	s.tb.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		s.tb.Fatal(err)
	}
	defer r.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		w.Close()
		s.tb.Fatal(err)
	}
	defer null.Close()
	cmd := exec.Command(s.guix, "substitute", mode)
	cmd.Env = s.env
	cmd.Stdin = strings.NewReader(command + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.ExtraFiles = []*os.File{null, w} // descriptors 3 and 4
	err = cmd.Start()
	w.Close()
	if err != nil {
		s.tb.Fatal(err)
	}
	var reply bytes.Buffer
	_, rerr := reply.ReadFrom(r)
	if err := cmd.Wait(); err != nil || rerr != nil {
		s.tb.Fatalf("guix substitute %s: %v, %v\n%s", mode, err, rerr, stderr.Bytes())
	}
	s.tb.Logf("guix substitute %s: replied %q\n%s", mode, reply.String(), stderr.Bytes())
	return strings.FieldsFunc(reply.String(), func(r rune) bool { return r == '\n' })
}
