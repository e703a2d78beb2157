package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/citest"
)

// The service definitions users install, beside the systemd unit.
const (
	guixServiceFile = "../contrib/guix/tbfg.scm"
	nixOSModuleFile = "../contrib/nixos/module.nix"
	guixDropIn      = "../contrib/systemd/tbfg-node-guix.conf"
)

// TestSystemdUnitVerifies runs systemd-analyze verify over the unit and its
// guix drop-in, with ExecStart= pointing at the binary under test (verify
// checks that the program exists) and a stand-in guix-daemon.service for
// the drop-in's dependency.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze := citest.Tool(t, "systemd-analyze", "systemd")
	bin, _ := buildBinary(t)
	dir := t.TempDir()
	copyWithBinary(t, unitFile, filepath.Join(dir, "tbfg-node.service"), bin)
	if err := os.Mkdir(filepath.Join(dir, "tbfg-node.service.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	copyWithBinary(t, guixDropIn, filepath.Join(dir, "tbfg-node.service.d", "guix.conf"), bin)
	standIn := "[Unit]\nDescription=stand-in for guix-daemon\n[Service]\nExecStart=/bin/true\n"
	if err := os.WriteFile(filepath.Join(dir, "guix-daemon.service"), []byte(standIn), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// --man=no: the man page is checked where make install is.
	cmd := exec.CommandContext(ctx, analyze, "verify", "--man=no", filepath.Join(dir, "tbfg-node.service"))
	cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+dir+":")
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// copyWithBinary copies a unit file, pointing it at bin instead of the
// installed binary.
func copyWithBinary(t *testing.T, from, to, bin string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.ReplaceAll(string(data), "/usr/local/bin/tbfg-node", bin))
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestGuixServiceReads reads every form of the Guix System service with
// Guile's reader. The machine's Guix cannot load (gnu services) in a test's
// time, so this checks the syntax, not the evaluation; the flags the
// service passes are checked against the binary's by TestServiceFlagsExist.
func TestGuixServiceReads(t *testing.T) {
	guile := citest.Tool(t, "guile", "guile-3.0")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Guix's (guix gexp) extends the reader with #~, #$ and #$@ the same way.
	prog := `(read-hash-extend #\~ (lambda (c port) (list 'gexp (read port))))
(read-hash-extend #\$ (lambda (c port)
  (if (eqv? (peek-char port) #\@)
      (begin (read-char port) (list 'ungexp-splicing (read port)))
      (list 'ungexp (read port)))))
(call-with-input-file (cadr (command-line))
  (lambda (port)
    (let loop ((n 0))
      (let ((form (read port)))
        (if (eof-object? form)
            (begin (display n) (newline))
            (loop (+ n 1)))))))`
	out, err := exec.CommandContext(ctx, guile, "--no-auto-compile", "-c", prog, guixServiceFile).CombinedOutput()
	if err != nil {
		t.Fatalf("guile read %s: %v\n%s", guixServiceFile, err, out)
	}
	if n := strings.TrimSpace(string(out)); n == "0" {
		t.Fatalf("guile read no form from %s", guixServiceFile)
	}
}

// TestNixOSModuleParses parses the NixOS module with Nix's own parser.
func TestNixOSModuleParses(t *testing.T) {
	nix := citest.Tool(t, "nix-instantiate", "nix-bin")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, nix, "--parse", nixOSModuleFile).CombinedOutput(); err != nil {
		t.Fatalf("nix-instantiate --parse %s: %v\n%s", nixOSModuleFile, err, out)
	}
}

// TestServiceFlagsExist checks that every flag the service definitions
// pass is one `tbfg-node run` or `join` takes, so that a renamed flag
// cannot leave a service that fails at boot.
func TestServiceFlagsExist(t *testing.T) {
	bin, _ := buildBinary(t)
	known := map[string]bool{}
	for _, sub := range []string{"run", "join"} {
		help, _ := exec.Command(bin, sub, "--help").CombinedOutput()
		for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z0-9-]+)`).FindAllStringSubmatch(string(help), -1) {
			known[m[1]] = true
		}
	}
	if len(known) < 10 {
		t.Fatalf("tbfg-node run and join --help list %d flags", len(known))
	}
	flag := regexp.MustCompile(`"--([a-z0-9-]+)(=[a-z]+)?"`)
	for _, file := range []string{guixServiceFile, nixOSModuleFile, guixDropIn, unitFile} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		if strings.HasSuffix(file, ".service") || strings.HasSuffix(file, ".conf") {
			text = quoteExecFlags(text)
		}
		for _, m := range flag.FindAllStringSubmatch(text, -1) {
			if !known[m[1]] {
				t.Errorf("%s passes --%s, which tbfg-node run does not take", file, m[1])
			}
		}
	}
}

// quoteExecFlags quotes the flags of a unit's ExecStart= lines, as the
// other files write them.
func quoteExecFlags(unit string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(unit, "\n") {
		if rest, ok := strings.CutPrefix(line, "ExecStart="); ok {
			for _, f := range strings.Fields(rest) {
				b.WriteString(`"` + f + `" `)
			}
		}
	}
	return b.String()
}
