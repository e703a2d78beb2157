package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"time"

	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/local"
)

// NixConfig configures a Nix executor.
type NixConfig struct {
	// Store is the Nix store URI passed with --store, e.g. "daemon" or
	// "local?store=/gnu/store&real=…&state=…&log=…"; empty uses Nix's
	// default.
	Store string
	// Dir is that store's logical directory.
	Dir store.Dir
	// Source, if set, is where .drv files and inputs missing from the Nix store are
	// imported from before a build. Without it Nix must find them itself
	// (in the store, or through its substituters).
	Source *local.Store
	// Options are passed as --option name value, e.g. "substituters".
	Options map[string]string
	// Env is the environment of the Nix commands; nil inherits the node's.
	Env []string
	// Logger receives one line per build; nil discards.
	Logger *slog.Logger
}

// Nix is the executor that has Nix build: nix-store --realise against
// NixConfig.Store. Outputs, NarHash, references and deriver come from Nix's
// own database.
type Nix struct{ cfg NixConfig }

// NewNix returns a Nix executor for cfg.
func NewNix(cfg NixConfig) (*Nix, error) {
	if err := cfg.Dir.Validate(); err != nil {
		return nil, fmt.Errorf("nix executor: %w", err)
	}
	if _, err := exec.LookPath("nix-store"); err != nil {
		return nil, fmt.Errorf("nix executor: %w (install Nix, e.g. apt-get install nix-bin)", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Nix{cfg: cfg}, nil
}

// Build imports the .drv closure if needed, realises req.DrvPath and reads
// what Nix recorded about the outputs.
func (n *Nix) Build(ctx context.Context, req Request) (*Result, error) {
	if req.Drv == nil || req.DrvPath.Dir() != n.cfg.Dir {
		return nil, fmt.Errorf("build %s: not a derivation of store directory %s", req.DrvPath, n.cfg.Dir)
	}
	if n.cfg.Source != nil {
		if err := n.importDrvs(ctx, req); err != nil {
			return nil, fmt.Errorf("build %s: %w", req.DrvPath, err)
		}
	}
	if err := n.realise(ctx, req); err != nil {
		n.cfg.Logger.Info("build failed", "drv", req.DrvPath, "err", err)
		return nil, fmt.Errorf("build %s: %w", req.DrvPath, err)
	}
	res, err := n.outputs(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", req.DrvPath, err)
	}
	n.cfg.Logger.Info("build succeeded", "drv", req.DrvPath)
	return res, nil
}

// command returns a Nix command with the configured store and options.
func (n *Nix) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	var all []string
	if n.cfg.Store != "" {
		all = append(all, "--store", n.cfg.Store)
	}
	for k, v := range n.cfg.Options {
		all = append(all, "--option", k, v)
	}
	return clientCommand(ctx, n.cfg.Env, name, append(all, args...)...)
}

// importDrvs copies into the Nix store what it lacks of the .drv closure of
// the request and of the closure of the inputs Source holds (the agent
// fetched them from the mesh), with nix-store --import. Without the inputs,
// Nix would build again, here, every input another node built.
func (n *Nix) importDrvs(ctx context.Context, req Request) error {
	inputs, _, err := validInputs(n.cfg.Source, req.Drv)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMissingInputs, err)
	}
	closure, err := n.cfg.Source.Closure(append(inputs, req.DrvPath)...)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMissingInputs, err)
	}
	args := []string{"--check-validity", "--print-invalid"}
	for _, p := range closure {
		args = append(args, string(p))
	}
	out, err := run(n.command(ctx, "nix-store", args...), nil)
	if err != nil {
		return err
	}
	invalid := strings.Fields(string(out))
	if len(invalid) == 0 {
		return nil
	}
	items, err := topoInfos(n.cfg.Source, invalid)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	written := make(chan struct{})
	go func() {
		defer close(written)
		pw.CloseWithError(writeExport(pw, n.cfg.Source, items))
	}()
	_, err = run(n.command(ctx, "nix-store", "--import"), pr)
	pr.CloseWithError(errors.New("import ended")) // unblocks the writer if Nix stopped reading
	<-written                                     // the writer reads the store: it must be done before Build returns
	return err
}

// topoInfos returns the records of paths, references first.
func topoInfos(src *local.Store, paths []string) ([]*local.Info, error) {
	want := make(map[store.Path]*local.Info, len(paths))
	for _, p := range paths {
		info, err := src.Query(store.Path(p))
		if err != nil {
			return nil, err
		}
		want[info.Path] = info
	}
	var out []*local.Info
	done := make(map[store.Path]bool)
	var visit func(*local.Info)
	visit = func(info *local.Info) {
		if done[info.Path] {
			return
		}
		done[info.Path] = true
		for _, r := range info.References {
			if dep, ok := want[r]; ok {
				visit(dep)
			}
		}
		out = append(out, info)
	}
	for _, p := range paths {
		visit(want[store.Path(p)])
	}
	return out, nil
}

// realise runs nix-store --realise, copying its error output (which carries
// the build log) to req.Log.
func (n *Nix) realise(ctx context.Context, req Request) error {
	args := []string{"--realise", string(req.DrvPath)}
	if req.Timeout > 0 {
		args = append(args, "--timeout", seconds(req.Timeout))
	}
	if req.MaxSilent > 0 {
		args = append(args, "--max-silent-time", seconds(req.MaxSilent))
	}
	ctx, cancel := withBackstop(ctx, req.Timeout, "nix-store")
	defer cancel()
	stderr, err := runBuild(ctx, n.command(ctx, "nix-store", args...), req.Log)
	if err == nil || ctx.Err() != nil {
		return err
	}
	return nixFailure(err, stderr)
}

// nixFailure classifies a failed nix-store --realise by its exit status
// (100 failed, 101 timed out, 102 hash mismatch, 104 dependency failed) and
// its last error line.
func nixFailure(err error, stderr string) error {
	msg := lastLine(stderr)
	code, err := exitCode(err, "nix-store")
	if err != nil {
		return err
	}
	switch {
	case code == 101 && strings.Contains(msg, "of silence"):
		return fmt.Errorf("%w: %s", ErrSilent, msg)
	case code == 101:
		return fmt.Errorf("%w: %s", ErrTimedOut, msg)
	case code == 102:
		return fmt.Errorf("%w: %s", ErrOutputHash, msg)
	case code >= 100 && code <= 107:
		return fmt.Errorf("%w: %s", ErrBuilderFailed, msg)
	}
	return fmt.Errorf("nix-store exit status %d: %s", code, msg)
}

// nixPathInfo is the part of `nix path-info --json` the executor reads.
type nixPathInfo struct {
	Path             store.Path   `json:"path"`
	NarHash          string       `json:"narHash"`
	NarSize          int64        `json:"narSize"`
	References       []store.Path `json:"references"`
	Deriver          store.Path   `json:"deriver"`
	RegistrationTime int64        `json:"registrationTime"`
	CA               string       `json:"ca"`
}

// outputs reads what Nix recorded about req's outputs.
func (n *Nix) outputs(ctx context.Context, req Request) (*Result, error) {
	args := []string{"path-info", "--json"}
	ids := make(map[store.Path]string, len(req.Drv.Outputs))
	for id, o := range req.Drv.Outputs {
		args = append(args, string(o.Path))
		ids[o.Path] = id
	}
	out, err := run(n.command(ctx, "nix", args...), nil)
	if err != nil {
		return nil, err
	}
	var infos []nixPathInfo
	if err := json.Unmarshal(out, &infos); err != nil {
		return nil, fmt.Errorf("read nix path-info: %w", err)
	}
	res := &Result{Outputs: make(map[string]*local.Info, len(infos)), Built: true}
	for _, pi := range infos {
		info, err := pi.info()
		if err != nil {
			return nil, err
		}
		if id, ok := ids[pi.Path]; ok {
			res.Outputs[id] = info
		}
	}
	if len(res.Outputs) != len(req.Drv.Outputs) {
		return nil, fmt.Errorf("%w: nix path-info lists %d of %d outputs", ErrMissingOutput, len(res.Outputs), len(req.Drv.Outputs))
	}
	return res, nil
}

func (pi nixPathInfo) info() (*local.Info, error) {
	sum, err := local.ParseSum(pi.NarHash, pi.NarSize)
	if err != nil {
		return nil, fmt.Errorf("nix path-info %s: %w", pi.Path, err)
	}
	return &local.Info{Path: pi.Path, Nar: sum, References: pi.References, Deriver: pi.Deriver,
		Registered: time.Unix(pi.RegistrationTime, 0).UTC(), CA: pi.CA}, nil
}
