package nixtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/internal/citest"
	"github.com/tbfg/tbfg-node/internal/testdir"
	"github.com/tbfg/tbfg-node/store"
)

// Nix is one private Nix installation for a test.
type Nix struct {
	// Root is the temporary directory holding everything below.
	Root string
	// StoreDir is the logical store directory, e.g. /gnu/store.
	StoreDir store.Dir
	// RealStoreDir is the directory that backs StoreDir on this machine.
	RealStoreDir string
	// Store is the store URI to pass with --store.
	Store string
	env   []string
}

// Option changes how New sets Nix up.
type Option func(*options)

type options struct {
	conf []string
	root string
}

// WithConf adds lines to the private nix.conf, e.g. "require-sigs = true".
func WithConf(lines ...string) Option {
	return func(o *options) { o.conf = append(o.conf, lines...) }
}

// InDir keeps the installation in root (created if missing) instead of a
// fresh temporary directory, e.g. under a node's data dir so that the node
// and the test see one store.
func InDir(root string) Option {
	return func(o *options) { o.root = root }
}

// Require skips t when a program from nix-bin or busybox-static is missing
// (failing instead under CI=true, see citest).
func Require(t testing.TB) {
	t.Helper()
	for _, p := range []struct{ file, pkg string }{
		{"nix-store", "nix-bin"}, {"nix", "nix-bin"}, {"nix-instantiate", "nix-bin"},
		{"/bin/busybox", "busybox-static"},
	} {
		citest.Tool(t, p.file, p.pkg)
	}
}

// New makes a private Nix with a store whose logical directory is dir, builds
// sandboxed with /bin/sh from busybox, and uses no substituters.
func New(t testing.TB, dir store.Dir, opts ...Option) *Nix {
	t.Helper()
	Require(t)
	var o options
	for _, f := range opts {
		f(&o)
	}
	root := o.root
	if root == "" {
		root = testdir.New(t) // Nix leaves its store items read-only
	}
	n := &Nix{
		Root:         root,
		StoreDir:     dir,
		RealStoreDir: filepath.Join(root, "store", string(dir)),
	}
	n.Store = "local?store=" + string(dir) + "&real=" + n.RealStoreDir +
		"&state=" + filepath.Join(root, "state") + "&log=" + filepath.Join(root, "log")
	conf := filepath.Join(root, "conf")
	for _, d := range []string{conf, filepath.Join(root, "home"), n.RealStoreDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	lines := append([]string{
		"substituters =",
		"build-users-group =",
		"experimental-features = nix-command",
		"sandbox = true",
		"sandbox-paths = /bin/sh=/bin/busybox",
		"require-sigs = false",
	}, o.conf...)
	if err := os.WriteFile(filepath.Join(conf, "nix.conf"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n.env = append(os.Environ(),
		"NIX_CONF_DIR="+conf,
		"NIX_USER_CONF_FILES="+filepath.Join(conf, "nix.conf"),
		"HOME="+filepath.Join(root, "home"),
		"XDG_CACHE_HOME="+filepath.Join(root, "cache"),
		"XDG_CONFIG_HOME="+filepath.Join(root, "config"),
		"NIX_REMOTE=",
	)
	return n
}

// Env is the environment of every command of this Nix, for programs that run
// Nix themselves (e.g. a node with the nix executor).
func (n *Nix) Env() []string { return slices.Clone(n.env) }

// Cmd returns a command for the Nix program name (nix, nix-store,
// nix-instantiate, …) with the private environment and --store set to this
// Nix's store, followed by args.
func (n *Nix) Cmd(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, append([]string{"--store", n.Store}, args...)...)
	cmd.Env = n.env
	return cmd
}

// CmdNoStore is Cmd without --store, for commands that name their own stores
// (nix copy --from/--to, nix store verify --store file://…).
func (n *Nix) CmdNoStore(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = n.env
	return cmd
}

// Run runs Cmd(name, args...) and returns its standard output with surrounding
// white space trimmed, failing t with Nix's error output if it fails.
func (n *Nix) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	return Output(t, n.Cmd(name, args...))
}

// Output runs cmd and returns its trimmed standard output, failing t with the
// command's error output if it fails.
func Output(t testing.TB, cmd *exec.Cmd) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

// RealPath is where the store item p lives on this machine.
func (n *Nix) RealPath(p store.Path) string {
	return filepath.Join(n.RealStoreDir, p.Base())
}
