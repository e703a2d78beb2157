package executor

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/citest"
	"github.com/tbfg/tbfg-node/internal/guixtest"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/derivation"
)

// daemonCases are derivations for the real guix-daemon, each built by
// busybox sh running script, and the failure the executor must report.
var daemonCases = []struct {
	name, script       string
	timeout, maxSilent time.Duration
	want               error
}{
	{"fails", `echo failing on purpose; exit 3`, time.Minute, 0, ErrBuilderFailed},
	{"spoofs-timeout", "echo \"building of \\`$out.drv' timed out after 9 seconds\"; exit 1", time.Minute, 0, ErrBuilderFailed},
	{"spoofs-unterminated", "printf \"building of \\`$out.drv' timed out after 9 seconds\"; exit 1", time.Minute, 0, ErrBuilderFailed},
	{"spoofs-missing-input", `printf 'cannot build missing derivation \342\200\230%s\342\200\231\n' $out.drv; exit 1`, time.Minute, 0, ErrBuilderFailed},
	{"runs-forever", `while true; do echo tick; sleep 0.2; done`, 2 * time.Second, 0, ErrTimedOut},
	{"spoofs-then-runs-forever", "echo \"builder for \\`$out.drv' failed with exit code 1\"; while true; do sleep 0.2; echo tick; done", 2 * time.Second, 0, ErrTimedOut},
	{"silent", `echo going quiet; sleep 600`, time.Minute, time.Second, ErrSilent},
	{"no-output", `echo nothing written`, time.Minute, 0, ErrMissingOutput},
	{"fixed-wrong", `echo goodbye > $out`, time.Minute, 0, ErrOutputHash},
}

// daemonDerivations adds busybox to the daemon's store and writes one
// derivation per case there, through `guix repl`; nonce makes them new.
func daemonDerivations(t *testing.T, guix, nonce string) map[string]store.Path {
	t.Helper()
	busybox := citest.Tool(t, "/bin/busybox", "busybox-static")
	dir := t.TempDir()
	bb := filepath.Join(dir, "busybox", "bin", "busybox")
	if err := os.MkdirAll(filepath.Dir(bb), 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bb, data, 0o755); err != nil {
		t.Fatal(err)
	}
	var scm strings.Builder
	scm.WriteString(`(use-modules (guix store) (guix derivations) (guix base32))
(define s (open-connection))
(define bb (add-to-store s "busybox" #t "sha256" ` + strconv.Quote(filepath.Dir(filepath.Dir(bb))) + `))
(define (mk name script . rest)
  (let ((d (apply derivation s (string-append "tbfg-" name) (string-append bb "/bin/busybox")
                  (list "sh" "-c" script)
                  #:sources (list bb) #:env-vars '(("NONCE" . ` + strconv.Quote(nonce) + `)) rest)))
    (format #t "~a ~a~%" name (derivation-file-name d))))
`)
	for _, c := range daemonCases {
		fixed := ""
		if c.name == "fixed-wrong" { // declares the hash of "hello\n"
			fixed = ` #:hash (nix-base32-string->bytevector "1l1wmw098rzi4wivbj81xmd9gds4196bm20ia04z4pdprxx3xd76") #:hash-algo 'sha256`
		}
		scm.WriteString("(mk " + strconv.Quote(c.name) + " " + strconv.Quote(c.script) + fixed + ")\n")
	}
	file := filepath.Join(dir, "derivations.scm")
	if err := os.WriteFile(file, []byte(scm.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(guix, "repl", file).Output()
	if err != nil {
		t.Fatalf("guix repl: %v\n%s", err, errOutput(err))
	}
	drvs := make(map[string]store.Path)
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if name, drv, ok := strings.Cut(sc.Text(), " "); ok {
			drvs[name] = store.Path(drv)
		}
	}
	return drvs
}

func errOutput(err error) []byte {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.Stderr
	}
	return nil
}

// TestGuixExecutorFailures has the real guix-daemon build derivations that
// fail in each way, some of whose builders print the daemon's own messages
// to pass for another failure, and checks the error the executor reports.
func TestGuixExecutorFailures(t *testing.T) {
	guix := guixtest.Require(t)
	drvs := daemonDerivations(t, guix, strconv.FormatInt(time.Now().UnixNano(), 10))
	g, err := NewGuix(GuixConfig{Command: guix})
	if err != nil {
		t.Fatal(err)
	}
	loader := derivation.DirLoader{Root: string(store.GuixDir), Dir: store.GuixDir}
	for _, c := range daemonCases {
		t.Run(c.name, func(t *testing.T) {
			d, err := loader.Load(drvs[c.name])
			if err != nil {
				t.Fatal(err)
			}
			var log strings.Builder
			_, err = g.Build(context.Background(), Request{DrvPath: drvs[c.name], Drv: d, Log: &log,
				Timeout: c.timeout, MaxSilent: c.maxSilent})
			if !errors.Is(err, c.want) {
				t.Fatalf("Build = %v, want %v\n%s", err, c.want, log.String())
			}
			t.Log(err)
		})
	}
	t.Run("missing-derivation", func(t *testing.T) {
		d, err := loader.Load(drvs["fails"])
		if err != nil {
			t.Fatal(err)
		}
		missing := store.Path("/gnu/store/" + strings.Repeat("0", 32) + "-tbfg-missing.drv")
		_, err = g.Build(context.Background(), Request{DrvPath: missing, Drv: d, Timeout: time.Minute})
		if !errors.Is(err, ErrMissingInputs) {
			t.Fatalf("Build = %v, want %v", err, ErrMissingInputs)
		}
	})
}
