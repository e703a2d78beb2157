package agent

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tbfg/tbfg-node/node/executor"
	"github.com/tbfg/tbfg-node/node/meshsource"
	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/derivation"
	"github.com/tbfg/tbfg-node/store/local"
)

// failure is why a build attempt ended without outputs.
type failure struct {
	reason scheduler.Reason
	err    error
}

// run runs one build and commits its outcome. It returns false when the
// build did not start because Started could not be committed, so a later
// wake-up tries again.
func (a *Agent) run(ctx context.Context, j *job, b scheduler.BuildInfo) bool {
	log := a.cfg.Logger.With("build", b.ID, "drv", b.Drv)
	if b.State == scheduler.BuildAllocated {
		if _, err := a.cfg.Applier.Apply(ctx, scheduler.Encode(&scheduler.Started{
			Time: a.cfg.Now(), Build: b.ID, Node: a.cfg.Node})); err != nil {
			log.Warn("cannot commit the start of a build", "err", err)
			return false
		}
	}
	log.Info("build started")
	outs, f := a.build(ctx, b)
	if a.isTakenAway(j) {
		log.Info("build taken away from this node")
		return true
	}
	if f != nil {
		if ctx.Err() != nil {
			f = &failure{scheduler.ReasonInfrastructure, errors.New("node stopped during the build")}
		}
		log.Warn("build failed", "reason", f.reason, "err", f.err)
		a.commitFailed(ctx, b.ID, f.reason, f.err.Error())
		return true
	}
	log.Info("build succeeded", "outputs", len(outs))
	a.commit(ctx, &scheduler.Succeeded{Time: a.cfg.Now(), Build: b.ID, Node: a.cfg.Node, Outputs: outs})
	return true
}

func (a *Agent) isTakenAway(j *job) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return j.takenAway
}

// build fetches b's inputs, builds it and returns its outputs' records.
func (a *Agent) build(ctx context.Context, b scheduler.BuildInfo) ([]scheduler.Item, *failure) {
	drvPath := store.Path(b.Drv)
	inputs := make([]store.Path, 0, len(b.Inputs)+1)
	inputs = append(inputs, drvPath)
	for _, in := range b.Inputs {
		inputs = append(inputs, store.Path(in))
	}
	if err := a.cfg.Fetcher.Fetch(ctx, inputs...); err != nil {
		return nil, &failure{scheduler.ReasonMissingInput, fmt.Errorf("fetch inputs: %w", err)}
	}
	drv, err := derivation.DirLoader{Root: a.cfg.Store.RealDir(), Dir: a.cfg.Store.Dir()}.Load(drvPath)
	if err != nil {
		return nil, &failure{scheduler.ReasonInfrastructure, err}
	}
	res, err := a.buildLogged(ctx, drvPath, drv)
	if err != nil {
		return nil, &failure{reasonOf(err), err}
	}
	outs, err := a.publish(ctx, drvPath, drv, res)
	if err != nil {
		return nil, &failure{scheduler.ReasonInfrastructure, err}
	}
	return outs, nil
}

// reasonOf maps an executor error to a failure reason.
func reasonOf(err error) scheduler.Reason {
	switch {
	case errors.Is(err, executor.ErrTimedOut), errors.Is(err, executor.ErrSilent):
		return scheduler.ReasonTimeout
	case executor.IsBuildFailure(err):
		return scheduler.ReasonBuildError
	case errors.Is(err, executor.ErrMissingInputs):
		return scheduler.ReasonMissingInput
	}
	return scheduler.ReasonInfrastructure
}

// buildLogged runs the executor with the builder's output going to the
// build's gzip log.
func (a *Agent) buildLogged(ctx context.Context, drvPath store.Path, drv *derivation.Derivation) (*executor.Result, error) {
	lw, err := a.openLog(drvPath)
	if err != nil {
		return nil, err
	}
	res, err := a.cfg.Executor.Build(ctx, executor.Request{DrvPath: drvPath, Drv: drv, Log: lw,
		Timeout: a.cfg.Timeout, MaxSilent: a.cfg.MaxSilent})
	if cerr := lw.Close(); cerr != nil {
		a.cfg.Logger.Warn("cannot write build log", "drv", drvPath, "err", cerr)
	}
	return res, err
}

// logWriter is a build log being written: gzip into a temporary file renamed
// into place by Close.
type logWriter struct {
	*gzip.Writer
	f    *os.File
	dest string
}

type discardLog struct{ io.Writer }

func (discardLog) Close() error { return nil }

func (a *Agent) openLog(drvPath store.Path) (io.WriteCloser, error) {
	if a.cfg.LogDir == "" {
		return discardLog{io.Discard}, nil
	}
	dest := filepath.Join(a.cfg.LogDir, meshsource.LogName(drvPath.Base()))
	f, err := os.Create(dest + ".tmp")
	if err != nil {
		return nil, fmt.Errorf("create build log: %w", err)
	}
	return &logWriter{Writer: gzip.NewWriter(f), f: f, dest: dest}, nil
}

// Close finishes the gzip stream and renames the log into place.
func (w *logWriter) Close() error {
	err := errors.Join(w.Writer.Close(), w.f.Close())
	if err == nil {
		err = os.Rename(w.f.Name(), w.dest)
	}
	if err != nil {
		os.Remove(w.f.Name())
	}
	return err
}

// publish makes each output valid in the local store and returns the signed
// records, in output-name order. An output without a recorded deriver (valid
// before the build, e.g. added by content) gets drvPath.
func (a *Agent) publish(ctx context.Context, drvPath store.Path, drv *derivation.Derivation, res *executor.Result) ([]scheduler.Item, error) {
	var outs []scheduler.Item
	for _, id := range slices.Sorted(maps.Keys(res.Outputs)) {
		info := *res.Outputs[id]
		if info.Deriver == "" {
			info.Deriver = drvPath
		}
		if err := a.ensureLocal(ctx, &info); err != nil {
			return nil, err
		}
		it, err := a.cfg.Signer.Item(&info, drv.System)
		if err != nil {
			return nil, err
		}
		outs = append(outs, it)
	}
	return outs, nil
}

// ensureLocal adds an output the executor kept elsewhere to the local store.
func (a *Agent) ensureLocal(ctx context.Context, info *local.Info) error {
	if ok, err := a.cfg.Store.IsValid(info.Path); err != nil || ok {
		return err
	}
	if a.cfg.OutputNAR == nil {
		return fmt.Errorf("output %s: %w", info.Path, local.ErrNotValid)
	}
	rc, err := a.cfg.OutputNAR(ctx, info.Path)
	if err != nil {
		return fmt.Errorf("output %s: %w", info.Path, err)
	}
	defer rc.Close()
	if err := a.cfg.Store.AddFromNAR(ctx, info, rc); err != nil {
		return fmt.Errorf("output %s: %w", info.Path, err)
	}
	return nil
}

// commitFailed commits a failure, its message cut to maxMessage bytes.
func (a *Agent) commitFailed(ctx context.Context, id scheduler.BuildID, r scheduler.Reason, msg string) {
	if len(msg) > maxMessage {
		msg = strings.ToValidUTF8(msg[:maxMessage], "")
	}
	a.commit(ctx, &scheduler.Failed{Time: a.cfg.Now(), Build: id, Node: a.cfg.Node, Reason: r, Message: msg})
}

// commit applies a final command, bounded by CommitTimeout even after ctx
// ended (a stopping node still reports what happened).
func (a *Agent) commit(ctx context.Context, c scheduler.Command) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.CommitTimeout)
	defer cancel()
	if _, err := a.cfg.Applier.Apply(cctx, scheduler.Encode(c)); err != nil {
		a.cfg.Logger.Warn("cannot commit a build's outcome", "command", fmt.Sprintf("%T", c), "err", err)
	}
}
