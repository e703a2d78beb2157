package executor

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/derivation"
	"github.com/tbfg/tbfg-node/store/local"
	"github.com/tbfg/tbfg-node/store/nar"
)

// GuixConfig configures a Guix executor.
type GuixConfig struct {
	// Command is the guix program; it defaults to "guix", found in PATH.
	Command string
	// Dir is the daemon's store directory; it defaults to /gnu/store.
	Dir store.Dir
	// RealDir is where the items of Dir are on this machine; it defaults
	// to Dir itself, the daemon's own store, which everyone may read.
	RealDir string
	// SubstituteURLs are passed to the daemon with --substitute-urls, in
	// order: the node's own substitute server first, so that the .drv
	// closure and the inputs built elsewhere come from the mesh, then any
	// other servers to use. They replace the daemon's own list for the
	// build; empty keeps that list.
	SubstituteURLs []string
	// Options are more `guix build` options, e.g. "--fallback" or
	// "--cores=4", passed before the derivation.
	Options []string
	// Env is the environment of the guix commands (GUIX_DAEMON_SOCKET, …);
	// nil inherits the node's.
	Env []string
	// Logger receives one line per build; nil discards.
	Logger *slog.Logger
}

// Guix is the executor that has the local guix-daemon build, through
// `guix build`. References and derivers come from the daemon's database
// (`guix gc`); NarHash and NarSize are computed from the output in the
// store, since no guix command prints them.
type Guix struct{ cfg GuixConfig }

// NewGuix returns a Guix executor for cfg. It fails when the guix command
// cannot be found.
func NewGuix(cfg GuixConfig) (*Guix, error) {
	if cfg.Command == "" {
		cfg.Command = "guix"
	}
	if cfg.Dir == "" {
		cfg.Dir = store.GuixDir
	}
	if err := cfg.Dir.Validate(); err != nil {
		return nil, fmt.Errorf("guix executor: %w", err)
	}
	if cfg.RealDir == "" {
		cfg.RealDir = string(cfg.Dir)
	}
	for _, u := range cfg.SubstituteURLs {
		if err := checkSubstituteURL(u); err != nil {
			return nil, fmt.Errorf("guix executor: %w", err)
		}
	}
	if _, err := exec.LookPath(cfg.Command); err != nil {
		return nil, fmt.Errorf("guix executor: %w (install Guix and start guix-daemon: "+
			"https://guix.gnu.org/manual/en/html_node/Binary-Installation.html)", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Guix{cfg: cfg}, nil
}

// checkSubstituteURL refuses what guix would split or not understand: the
// URLs go to the daemon as one space-separated list.
func checkSubstituteURL(s string) error {
	if strings.ContainsAny(s, " \t\n\r") {
		return fmt.Errorf("substitute URL %q: contains white space", s)
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("substitute URL %q: %w", s, err)
	case u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file":
		return fmt.Errorf("substitute URL %q: want an http, https or file URL", s)
	case u.Scheme != "file" && u.Host == "":
		return fmt.Errorf("substitute URL %q: no host", s)
	}
	return nil
}

// Build has the daemon build req.DrvPath (substituting its .drv closure and
// inputs when missing) and reads what it recorded about the outputs.
func (g *Guix) Build(ctx context.Context, req Request) (*Result, error) {
	if req.Drv == nil || req.DrvPath.Dir() != g.cfg.Dir {
		return nil, fmt.Errorf("build %s: not a derivation of store directory %s", req.DrvPath, g.cfg.Dir)
	}
	if err := g.build(ctx, req); err != nil {
		g.cfg.Logger.Info("build failed", "drv", req.DrvPath, "err", err)
		return nil, fmt.Errorf("build %s: %w", req.DrvPath, err)
	}
	res, err := g.outputs(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", req.DrvPath, err)
	}
	g.cfg.Logger.Info("build succeeded", "drv", req.DrvPath)
	return res, nil
}

// buildArgs are the arguments of `guix build` for req. --no-grafts: the
// farm builds the derivation it was given, not a grafted variant.
// --no-offload: the daemon's own build machines are not the mesh's choice.
func (g *Guix) buildArgs(req Request) []string {
	args := []string{"build", "--no-grafts", "--no-offload"}
	if len(g.cfg.SubstituteURLs) > 0 {
		args = append(args, "--substitute-urls="+strings.Join(g.cfg.SubstituteURLs, " "))
	}
	if req.Timeout > 0 {
		args = append(args, "--timeout="+seconds(req.Timeout))
	}
	if req.MaxSilent > 0 {
		args = append(args, "--max-silent-time="+seconds(req.MaxSilent))
	}
	args = append(args, g.cfg.Options...)
	return append(args, string(req.DrvPath))
}

// build runs `guix build`, copying its error output (progress and the
// build log) to req.Log, and checks what it printed.
func (g *Guix) build(ctx context.Context, req Request) error {
	ctx, cancel := withBackstop(ctx, req.Timeout, "guix build")
	defer cancel()
	cmd := clientCommand(ctx, inEnglish(g.cfg.Env), g.cfg.Command, g.buildArgs(req)...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := runBuild(ctx, cmd, req.Log)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return guixFailure(err, stderr)
	}
	printed, err := parseStorePaths(g.cfg.Dir, stdout.Bytes())
	if err != nil {
		return fmt.Errorf("read guix build output: %w", err)
	}
	return checkPrinted(req.Drv, printed)
}

// inEnglish is env (the node's own when nil) with guix's messages in
// English, untranslated, as guixFailure reads them. LANGUAGE chooses the
// messages only (it is ignored in the C locale, whose messages are
// English), so the character set, and with it the build log's bytes, stays
// what the node has.
func inEnglish(env []string) []string {
	if env == nil {
		env = os.Environ()
	}
	return append(slices.Clone(env), "LANGUAGE=en")
}

// checkPrinted checks the paths `guix build` printed against the
// derivation's outputs. It prints none when it had the daemon substitute
// the .drv, which it could not read beforehand.
func checkPrinted(d *derivation.Derivation, printed []store.Path) error {
	outputs := slices.Collect(maps.Values(outputPaths(d)))
	for _, p := range printed {
		if !slices.Contains(outputs, p) {
			return fmt.Errorf("guix build printed %s, not an output of the derivation", p)
		}
	}
	return nil
}

// outputs reads what the daemon recorded about req's outputs.
func (g *Guix) outputs(ctx context.Context, req Request) (*Result, error) {
	res := &Result{Outputs: make(map[string]*local.Info, len(req.Drv.Outputs)), Built: true}
	for id, o := range req.Drv.Outputs {
		info, err := g.outputInfo(ctx, req.DrvPath, o.Path)
		if err != nil {
			return nil, fmt.Errorf("output %s: %w", id, err)
		}
		if o.HashAlgo != "" {
			if err := checkFixed(o, info, g.realPath(o.Path)); err != nil {
				return nil, fmt.Errorf("output %s: %w", id, err)
			}
		}
		res.Outputs[id] = info
	}
	return res, nil
}

// outputInfo is the record of the valid output p of drv: its references
// and deriver from the daemon, and the Sum of its NAR.
func (g *Guix) outputInfo(ctx context.Context, drv, p store.Path) (*local.Info, error) {
	refs, err := g.gcQuery(ctx, "--references", p)
	if err != nil {
		return nil, err // of the node: after guix build every output is valid
	}
	slices.Sort(refs)
	derivers, err := g.gcQuery(ctx, "--derivers", p)
	if err != nil {
		return nil, err
	}
	sum, err := nar.HashPath(g.realPath(p))
	if err != nil {
		return nil, fmt.Errorf("hash %s: %w", p, err)
	}
	return &local.Info{Path: p, Nar: sum, References: slices.Compact(refs), Deriver: pickDeriver(drv, derivers)}, nil
}

// gcQuery runs `guix gc QUERY p` (--references, --derivers) and returns the
// store paths it prints.
func (g *Guix) gcQuery(ctx context.Context, query string, p store.Path) ([]store.Path, error) {
	out, err := run(clientCommand(ctx, g.cfg.Env, g.cfg.Command, "gc", query, string(p)), nil)
	if err != nil {
		return nil, err
	}
	paths, err := parseStorePaths(g.cfg.Dir, out)
	if err != nil {
		return nil, fmt.Errorf("read guix gc %s %s: %w", query, p, err)
	}
	return paths, nil
}

// pickDeriver is drv when the daemon lists it among the derivers of an
// output (several derivations may give the same fixed output), else the
// first one listed, else none.
func pickDeriver(drv store.Path, derivers []store.Path) store.Path {
	switch {
	case slices.Contains(derivers, drv):
		return drv
	case len(derivers) > 0:
		return derivers[0]
	}
	return ""
}

// OutputNAR streams the NAR of the store item p from the daemon's store,
// which the node reads directly: what the agent publishes for the outputs.
// Closing the reader stops the dump.
func (g *Guix) OutputNAR(ctx context.Context, p store.Path) (io.ReadCloser, error) {
	if _, err := g.cfg.Dir.ParsePath(string(p)); err != nil {
		return nil, fmt.Errorf("dump: %w", err)
	}
	real := g.realPath(p)
	if _, err := os.Lstat(real); err != nil {
		return nil, fmt.Errorf("dump %s: %w", p, err)
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(nar.Dump(pw, real))
	}()
	// Closing the writing end makes reads fail with ctx.Err() and unblocks
	// the dump.
	stop := context.AfterFunc(ctx, func() { pw.CloseWithError(ctx.Err()) })
	return &narReader{PipeReader: pr, stop: stop, done: done}, nil
}

// narReader ends the dump writing to it when closed, and waits for it.
type narReader struct {
	*io.PipeReader
	stop func() bool
	done chan struct{}
}

func (r *narReader) Close() error {
	r.stop()
	err := r.PipeReader.Close()
	<-r.done // the writer fails on the closed pipe and returns
	return err
}

func (g *Guix) realPath(p store.Path) string {
	return filepath.Join(g.cfg.RealDir, p.Base())
}

// parseStorePaths reads one store path of dir per line, as guix build and
// guix gc print them; blank lines are skipped.
func parseStorePaths(dir store.Dir, out []byte) ([]store.Path, error) {
	var paths []store.Path
	for i, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		p, err := dir.ParsePath(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// guixFailure classifies a failed `guix build` by the daemon's verdict in
// its error output (it exits 1 for every failure of the daemon); see
// guixVerdict for why a builder cannot forge it.
func guixFailure(err error, stderr string) error {
	code, err := exitCode(err, "guix")
	if err != nil {
		return err
	}
	if msg, kind := guixFailureKind(stderr); kind != nil {
		return fmt.Errorf("%w: %s", kind, msg)
	}
	return fmt.Errorf("guix build exit status %d: %s", code, lastLine(stderr))
}

// guixFailureKind is the daemon's verdict in stderr and the kind of failure
// it reports; nil when there is no verdict the executor knows.
func guixFailureKind(stderr string) (msg string, kind error) {
	verdict, failed := guixVerdict(stderr)
	for _, v := range guixVerdicts {
		if m := v.re.FindString(verdict); m != "" {
			return m, v.kind
		}
	}
	if failed {
		// Guix reported a failed build with a verdict this table lacks.
		return lastLine(stderr), ErrBuilderFailed
	}
	return "", nil
}

// guixVerdict is the line of stderr that holds the daemon's verdict, and
// whether guix reported that a build failed; none when guix did not end
// with its own error line (it stopped before printing one).
//
// A builder's output reaches guix build's error output unmarked, as lines
// of any text, copies of daemon messages included. What a builder cannot do
// is write after the verdict on its build: the daemon prints that once the
// builder has exited or been killed, and guix then prints only its own
// closing lines (build of … failed, View build log at …, guix build:
// error: …). So the verdict is the last line before those, read from its
// end (a builder line left without a newline runs into it as a prefix),
// and every line before it is ignored.
func guixVerdict(stderr string) (verdict string, failed bool) {
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	i := len(lines) - 1
	for n, closing := range guixClosingLines { // in the order guix prints them, read backwards
		if i >= 0 && closing.MatchString(strings.TrimRight(lines[i], " \r")) {
			failed = failed || closing == guixBuildFailedLine
			i--
		} else if n == 0 {
			return "", false
		}
	}
	if i < 0 {
		return "", failed
	}
	return strings.TrimRight(lines[i], " \r"), failed
}

// storePathRE matches a store path inside one of guix's messages.
const storePathRE = "/[^\\s`'‘’]+"

var (
	// guixBuildFailedLine is guix's report of the daemon's build-failed
	// trace (guix/status.scm).
	guixBuildFailedLine = regexp.MustCompile("^build of " + storePathRE + " failed$")
	// guixClosingLines are what guix prints after the daemon's verdict, last
	// first: the error it exits with (guix/ui.scm), then the build log's
	// place and the failed build (guix/status.scm).
	guixClosingLines = []*regexp.Regexp{
		regexp.MustCompile("^guix build: error: "),
		regexp.MustCompile("^View build log at '" + storePathRE + "'\\.$"),
		guixBuildFailedLine,
	}
)

// guixVerdicts are the daemon's verdicts (nix/libstore/build.cc) and the
// kinds they report, each matched at the end of the verdict line.
var guixVerdicts = []struct {
	re   *regexp.Regexp
	kind error
}{
	{regexp.MustCompile("building of `" + storePathRE + "' timed out after [0-9]+ seconds of silence$"), ErrSilent},
	{regexp.MustCompile("building of `" + storePathRE + "' timed out after [0-9]+ seconds$"), ErrTimedOut},
	{regexp.MustCompile("hash mismatch for store item '" + storePathRE + "'$"), ErrOutputHash},
	{regexp.MustCompile("builder for `" + storePathRE + "' failed to produce output path `" + storePathRE + "'$"), ErrMissingOutput},
	{regexp.MustCompile("builder for `" + storePathRE + "' (failed with exit code [0-9]+|failed due to signal [0-9]+( \\([^()]*\\))?|died abnormally)$"), ErrBuilderFailed},
	// guix prints ‘ and ’ as ? where the character set lacks them (C locale).
	{regexp.MustCompile("cannot build missing derivation [‘?]" + storePathRE + "[’?]$"), ErrMissingInputs},
	{regexp.MustCompile("some substitutes for the outputs of derivation `" + storePathRE + "' failed \\(usually happens due to networking issues\\); try `--fallback' to build derivation from source$"), ErrMissingInputs},
	{regexp.MustCompile("hash mismatch for substituted item `" + storePathRE + "'$"), ErrMissingInputs},
	{regexp.MustCompile("cannot build derivation `" + storePathRE + "': [0-9]+ dependencies couldn't be built$"), ErrMissingInputs},
	{regexp.MustCompile("path `" + storePathRE + "' does not exist and cannot be created$"), ErrMissingInputs},
}

var _ Executor = (*Guix)(nil)
