package guixtest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// PathInfo is what the daemon's database records about a valid store item.
type PathInfo struct {
	Path       string
	NarHash    string // sha256:<nix32>
	NarSize    int64
	Deriver    string // "" when none is recorded
	References []string
}

// queryScript prints, for each store path of its arguments, the daemon's
// record of it (path, "valid", NAR hash, NAR size, deriver or #f,
// references) or the path and "invalid"; with TBFG_SUBSTITUTABLE set, those
// of the paths it has a trusted substitute for, one per line, asking the
// substitute URLs in $TBFG_SUBSTITUTE_URLS if set (else its own and the
// discovered ones). (guix repl would take an option for its own.)
const queryScript = `(use-modules (guix store) (guix base32))
(with-store s
  (let ((paths (cdr (command-line))))
    (if (getenv "TBFG_SUBSTITUTABLE")
     (let ((urls (getenv "TBFG_SUBSTITUTE_URLS")))
       (if urls
           (set-build-options s #:use-substitutes? #t #:substitute-urls (string-tokenize urls))
           (set-build-options s #:use-substitutes? #t))
       (for-each (lambda (p) (format #t "~a~%" p)) (substitutable-paths s paths)))
     (for-each
      (lambda (p)
        (if (valid-path? s p)
            (let ((i (query-path-info s p)))
              (format #t "~a valid sha256:~a ~a ~a~{ ~a~}~%" p
                      (bytevector->nix-base32-string (path-info-hash i))
                      (path-info-nar-size i) (path-info-deriver i)
                      (path-info-references i)))
            (format #t "~a invalid~%" p)))
      paths))))
`

// PathInfos returns the daemon's record of each of paths that is valid in
// the store; the others are absent from the map.
func (d *PrivateDaemon) PathInfos(paths ...string) map[string]PathInfo {
	d.tb.Helper()
	infos := map[string]PathInfo{}
	for _, line := range d.query(nil, paths...) {
		f := strings.Fields(line)
		if len(f) < 2 || f[1] != "valid" {
			continue
		}
		if len(f) < 5 {
			d.tb.Fatalf("guix repl printed %q", line)
		}
		size, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil {
			d.tb.Fatalf("guix repl printed %q: %v", line, err)
		}
		info := PathInfo{Path: f[0], NarHash: f[2], NarSize: size, Deriver: f[4], References: f[5:]}
		if info.Deriver == "#f" {
			info.Deriver = ""
		}
		slices.Sort(info.References)
		infos[info.Path] = info
	}
	return infos
}

// Substitutable returns those of paths that the daemon has a substitute
// for that its `guix substitute` trusts (a narinfo signed by a key of its
// ACL), asking urls, or with urls nil its own and discovered servers.
func (d *PrivateDaemon) Substitutable(urls []string, paths ...string) []string {
	d.tb.Helper()
	env := []string{"TBFG_SUBSTITUTABLE=1"}
	if urls != nil {
		env = append(env, "TBFG_SUBSTITUTE_URLS="+strings.Join(urls, " "))
	}
	got := d.query(env, paths...)
	slices.Sort(got)
	return got
}

// query runs queryScript in guix repl with args, and returns its lines.
func (d *PrivateDaemon) query(env []string, args ...string) []string {
	d.tb.Helper()
	script := filepath.Join(filepath.Dir(d.Socket), "query.scm")
	if err := os.WriteFile(script, []byte(queryScript), 0o644); err != nil {
		d.tb.Fatal(err)
	}
	// Not tb.Context: the queries also run in cleanups, after it ended.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := d.Command(ctx, append([]string{"repl", script}, args...)...)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.Output()
	if err != nil {
		d.tb.Fatalf("guix repl: %v", errText(err, string(exitStderr(err))))
	}
	return strings.FieldsFunc(string(out), func(r rune) bool { return r == '\n' })
}

// exitStderr is the error output an exec.ExitError kept.
func exitStderr(err error) []byte {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.Stderr
	}
	return nil
}
