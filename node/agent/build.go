package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tbfg/tbfg-node/node/executor"
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

// run runs one build and commits its outcome. It returns false when a later
// wake-up must try again: Started could not be committed, so the build did not
// start, or the outcome could not be committed (then only the commit is tried
// again).
func (a *Agent) run(ctx context.Context, j *job, b scheduler.BuildInfo) bool {
	log := a.cfg.Logger.With("build", b.ID, "drv", b.Drv)
	if c, ok := a.takeUnreported(b); ok {
		if s, ok := c.(*scheduler.Succeeded); ok {
			s.TakeNext = a.takesNext(ctx) // the mesh's format may have changed since
		}
		log.Info("committing the outcome of a build again")
		return a.commit(ctx, b, c)
	}
	// Started is committed while the .drv and the inputs are fetched; the
	// builder runs only once it is committed, and the outcome is committed
	// after it. A Started that cannot be committed fails the job before the
	// builder runs: the next wake-up tries again.
	started := a.commitStarted(ctx, b)
	log.Info("build started")
	began := a.cfg.Now()
	outs, f := a.build(ctx, b, started)
	if err := started(); err != nil {
		log.Warn("cannot commit the start of a build", "err", err)
		return false
	}
	if a.isTakenAway(j) {
		log.Info("build taken away from this node")
		a.report(b, "canceled", began)
		return true
	}
	if f != nil {
		if ctx.Err() != nil {
			f = &failure{scheduler.ReasonInfrastructure, errors.New("node stopped during the build")}
		}
		log.Warn("build failed", "reason", f.reason, "err", f.err)
		a.report(b, "failed", began)
		return a.commitFailed(ctx, b, f.reason, f.err.Error())
	}
	log.Info("build succeeded", "outputs", len(outs))
	a.report(b, "succeeded", began)
	ok := a.commit(ctx, b, &scheduler.Succeeded{Time: a.cfg.Now(), Build: b.ID, Node: a.cfg.Node, Outputs: outs,
		TakeNext: a.takesNext(ctx)})
	if ok {
		a.mark(b, committed)
	}
	return ok
}

// takesNext says whether a success committed now asks to take the next
// build: only while the agent runs and the node takes new builds.
func (a *Agent) takesNext(ctx context.Context) bool {
	return ctx.Err() == nil && a.cfg.TakeNext != nil && a.cfg.TakeNext()
}

// commitStarted commits Started for an allocated build in the background
// and returns a function that waits for the result. The commit is detached
// from ctx and bounded by CommitTimeout, like the final commits, so that a
// build the node stops during its start is reported as failed.
func (a *Agent) commitStarted(ctx context.Context, b scheduler.BuildInfo) func() error {
	if b.State != scheduler.BuildAllocated {
		return func() error { return nil }
	}
	cmd := scheduler.Encode(&scheduler.Started{Time: a.cfg.Now(), Build: b.ID, Node: a.cfg.Node})
	done := make(chan error, 1)
	go func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.CommitTimeout)
		defer cancel()
		_, err := a.cfg.Applier.Apply(cctx, cmd)
		done <- err
	}()
	return sync.OnceValue(func() error { return <-done })
}

// report tells Config.Finished that b ended with result.
func (a *Agent) report(b scheduler.BuildInfo, result string, began time.Time) {
	if a.cfg.Finished != nil {
		a.cfg.Finished(b.System, result, a.cfg.Now().Sub(began))
	}
}

// takeUnreported removes and returns the outcome of b's attempt that an
// earlier commit failed to report.
func (a *Agent) takeUnreported(b scheduler.BuildInfo) (scheduler.Command, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	o, ok := a.unreported[b.ID]
	if !ok || o.attempt != b.Attempt {
		return nil, false
	}
	delete(a.unreported, b.ID)
	return o.cmd, true
}

func (a *Agent) isTakenAway(j *job) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return j.takenAway
}

// build fetches b's inputs, waits for started, builds it and returns its
// outputs' records.
func (a *Agent) build(ctx context.Context, b scheduler.BuildInfo, started func() error) ([]scheduler.Item, *failure) {
	drvPath := store.Path(b.Drv)
	inputs := make([]store.Path, 0, len(b.Inputs)+1)
	inputs = append(inputs, drvPath)
	for _, in := range b.Inputs {
		inputs = append(inputs, store.Path(in))
	}
	if err := a.cfg.Fetcher.Fetch(ctx, inputs...); err != nil {
		return nil, &failure{scheduler.ReasonMissingInput, fmt.Errorf("fetch inputs: %w", err)}
	}
	for _, p := range inputs {
		a.cfg.Store.Touch(p) // a use: the store collector keeps recently used items longest
	}
	a.mark(b, fetched)
	drv, err := derivation.DirLoader{Root: a.cfg.Store.RealDir(), Dir: a.cfg.Store.Dir()}.Load(drvPath)
	if err != nil {
		return nil, &failure{scheduler.ReasonInfrastructure, fmt.Errorf("load derivation: %w", err)}
	}
	if err := started(); err != nil {
		return nil, &failure{scheduler.ReasonInfrastructure, fmt.Errorf("commit start: %w", err)}
	}
	a.mark(b, execd)
	res, err := a.buildLogged(ctx, drvPath, drv)
	a.mark(b, exited)
	if err != nil {
		return nil, &failure{reasonOf(err), err}
	}
	outs, err := a.publish(ctx, drvPath, drv, res)
	if err != nil {
		return nil, &failure{scheduler.ReasonInfrastructure, err}
	}
	a.mark(b, published)
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
// build's log.
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

type discardLog struct{ io.Writer }

func (discardLog) Close() error { return nil }

// openLog starts the live log of the build of drvPath.
func (a *Agent) openLog(drvPath store.Path) (io.WriteCloser, error) {
	if a.cfg.Logs == nil {
		return discardLog{io.Discard}, nil
	}
	return a.cfg.Logs.Create(drvPath.Base())
}

// publish makes each output valid in the local store and returns the signed
// records, in output-name order. An output without a recorded deriver (valid
// before the build, e.g. added by content) gets drvPath. Every output of drv
// must be in res at its path: the state would reject a Succeeded without it.
func (a *Agent) publish(ctx context.Context, drvPath store.Path, drv *derivation.Derivation, res *executor.Result) ([]scheduler.Item, error) {
	var outs []scheduler.Item
	for _, id := range slices.Sorted(maps.Keys(drv.Outputs)) {
		got, ok := res.Outputs[id]
		if !ok || got == nil || got.Path != drv.Outputs[id].Path {
			return nil, fmt.Errorf("executor result lacks output %q (%s) of %s", id, drv.Outputs[id].Path, drvPath)
		}
		info := *got
		if info.Deriver == "" {
			info.Deriver = drvPath
		}
		if err := a.ensureLocal(ctx, &info); err != nil {
			return nil, err
		}
		it, err := a.cfg.Signer.Item(&info, drv.System)
		if err != nil {
			return nil, fmt.Errorf("sign output %s: %w", info.Path, err)
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

// commitFailed commits a failure of b, its message cut to maxMessage bytes.
func (a *Agent) commitFailed(ctx context.Context, b scheduler.BuildInfo, r scheduler.Reason, msg string) bool {
	if len(msg) > maxMessage {
		msg = strings.ToValidUTF8(msg[:maxMessage], "")
	}
	return a.commit(ctx, b, &scheduler.Failed{Time: a.cfg.Now(), Build: b.ID, Node: a.cfg.Node, Reason: r, Message: msg})
}

// commit applies the final command of b's attempt, bounded by CommitTimeout
// even after ctx ended (a stopping node still reports what happened). If it
// cannot, it keeps the command for the next wake-up and returns false.
func (a *Agent) commit(ctx context.Context, b scheduler.BuildInfo, c scheduler.Command) bool {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.CommitTimeout)
	defer cancel()
	if _, err := a.cfg.Applier.Apply(cctx, scheduler.Encode(c)); err != nil {
		a.cfg.Logger.Warn("cannot commit a build's outcome; will try again", "build", b.ID,
			"command", fmt.Sprintf("%T", c), "err", err)
		a.mu.Lock()
		a.unreported[b.ID] = outcome{attempt: b.Attempt, cmd: c}
		a.mu.Unlock()
		return false
	}
	return true
}
