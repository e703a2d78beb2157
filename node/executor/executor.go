package executor

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/derivation"
	"github.com/tbfg/tbfg-node/store/local"
)

// Executor builds derivations. Implementations are safe for concurrent use.
type Executor interface {
	// Build builds req.Drv and returns its outputs. When every output is
	// valid already it returns them without building.
	Build(ctx context.Context, req Request) (*Result, error)
}

// Func adapts a function to an Executor, for tests of code that drives
// builds (the agent loop) without running any.
type Func func(ctx context.Context, req Request) (*Result, error)

// Build calls f.
func (f Func) Build(ctx context.Context, req Request) (*Result, error) { return f(ctx, req) }

// Request is one build.
type Request struct {
	// DrvPath is the store path of the derivation; it becomes the outputs'
	// deriver.
	DrvPath store.Path
	// Drv is the parsed derivation at DrvPath.
	Drv *derivation.Derivation
	// Log receives the builder's standard output and error; nil discards
	// them. It is written from one goroutine at a time.
	Log io.Writer
	// Timeout bounds the whole build; 0 means no bound.
	Timeout time.Duration
	// MaxSilent bounds the time the builder may go without writing to its
	// log; 0 means no bound.
	MaxSilent time.Duration
}

// Result is what a successful build produced.
type Result struct {
	// Outputs maps each output id ("out", "dev", …) to what the store records
	// about it: path, NarHash, NarSize, references, deriver.
	Outputs map[string]*local.Info
	// Built is false when every output was valid already.
	Built bool
}

// Errors wrapped by Build. The first group are failures of the derivation
// (building it again elsewhere gives the same result); the second are
// failures of this node, after which the build may be retried elsewhere.
var (
	// ErrBuilderFailed means the builder exited with a non-zero status or
	// was killed by a signal.
	ErrBuilderFailed = errors.New("builder failed")
	// ErrTimedOut means the build ran longer than its timeout.
	ErrTimedOut = errors.New("build timed out")
	// ErrSilent means the builder wrote nothing for longer than its
	// max-silent-time.
	ErrSilent = errors.New("build was silent for too long")
	// ErrMissingOutput means the builder succeeded without producing an
	// output.
	ErrMissingOutput = errors.New("builder did not produce an output")
	// ErrOutputHash means a fixed output's hash is not the one declared, or
	// it refers to other store paths.
	ErrOutputHash = errors.New("fixed output does not match its declared hash")
	// ErrOutputCycle means the outputs of one derivation refer to each
	// other in a loop.
	ErrOutputCycle = errors.New("output reference cycle")
	// ErrInvalidDerivation means the derivation's output paths are not the
	// ones its contents give: it was tampered with or made wrongly.
	ErrInvalidDerivation = errors.New("invalid derivation")
	// ErrUnsupported means the derivation needs something this executor
	// cannot give: another system, a built-in builder, structured attributes.
	ErrUnsupported = errors.New("derivation not supported by this executor")

	// ErrMissingInputs means some inputs are not valid in the local store.
	ErrMissingInputs = errors.New("inputs missing from the store")
	// ErrSandbox means the build namespace could not be set up.
	ErrSandbox = errors.New("cannot set up the build sandbox")
)

// IsBuildFailure reports whether err is a failure of the derivation itself
// rather than of the node that ran it.
func IsBuildFailure(err error) bool {
	for _, e := range []error{ErrBuilderFailed, ErrTimedOut, ErrSilent, ErrMissingOutput, ErrOutputHash, ErrOutputCycle, ErrInvalidDerivation, ErrUnsupported} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
