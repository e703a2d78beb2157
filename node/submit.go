package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/node/meshsource"
	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/derivation"
)

// submitBatch is the most derivations one Submit command carries; larger
// graphs are split (scheduler.SplitSubmit) so that no log entry gets huge.
const submitBatch = 2000

// Submit imports the .drv closure of every requested derivation into the
// node's store (meshsource.ImportDrvs: every .drv path, output path and
// source must recompute) and submits the whole graph to the build queue,
// with the .drv files and sources as signed items this node holds. Nothing
// is submitted if any derivation is wrong.
func (n *Node) Submit(ctx context.Context, req adminapi.SubmitRequest) (adminapi.SubmitResult, error) {
	if !n.running() {
		return adminapi.SubmitResult{}, n.notReady()
	}
	if len(req.Derivations) == 0 {
		return adminapi.SubmitResult{}, fmt.Errorf("%w: no derivations given", adminapi.ErrBadRequest)
	}
	roots, err := n.importRequested(ctx, req.Derivations)
	if err != nil {
		return adminapi.SubmitResult{}, err
	}
	cmd, err := n.submitCommand(roots, req)
	if err != nil {
		return adminapi.SubmitResult{}, err
	}
	if err := n.members.EnsureJoined(ctx); err != nil {
		return adminapi.SubmitResult{}, err
	}
	ids, index, err := n.applySubmit(ctx, cmd)
	if err != nil {
		return adminapi.SubmitResult{}, err
	}
	// Answer with the states after the submission where the replica gets
	// there soon; a trailing one answers "submitted", and Index says what
	// to wait for.
	n.waitApplied(ctx, index)
	res := n.submitResult(roots, cmd.Derivations, ids)
	res.Index = index
	return res, nil
}

// importRequested resolves each argument to a .drv path and imports the
// closures, reading them from the node's store for paths valid there and
// from the directory of each file named otherwise. Each directory's
// closures are checked in full before anything of them is added.
func (n *Node) importRequested(ctx context.Context, args []string) ([]store.Path, error) {
	roots := make([]store.Path, 0, len(args))
	byDir := map[string][]store.Path{}
	var dirs []string
	for _, a := range args {
		p, dir, err := n.resolveDrv(a)
		if err != nil {
			return nil, err
		}
		if _, ok := byDir[dir]; !ok {
			dirs = append(dirs, dir)
		}
		byDir[dir] = append(byDir[dir], p)
		roots = append(roots, p)
	}
	for _, dir := range dirs {
		if _, err := meshsource.ImportDrvs(ctx, n.store, dir, byDir[dir]...); err != nil {
			return nil, n.importError(err)
		}
	}
	return roots, nil
}

// resolveDrv turns an argument into a .drv store path and the directory to
// read its closure from: a path valid in the store, read from the store's
// real directory, or a file named <hash>-<name>.drv, read from its own
// directory.
func (n *Node) resolveDrv(arg string) (store.Path, string, error) {
	dir := n.store.Dir()
	if p, err := dir.ParsePath(arg); err == nil {
		if ok, err := n.store.IsValid(p); err != nil {
			return "", "", err
		} else if ok {
			return p, n.store.RealDir(), nil
		}
	}
	if !filepath.IsAbs(arg) {
		return "", "", fmt.Errorf("%w: %s: want a store path or an absolute file name", adminapi.ErrBadRequest, arg)
	}
	p, err := dir.Join(filepath.Base(arg))
	if err != nil || !strings.HasSuffix(arg, ".drv") {
		return "", "", fmt.Errorf("%w: %s: file name is not that of a .drv store item (<hash>-<name>.drv)", adminapi.ErrBadRequest, arg)
	}
	if _, err := os.Stat(arg); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", "", fmt.Errorf("%w: %s: no such file, and not valid in this node's store (%s)", adminapi.ErrBadRequest, arg, n.store.RealDir())
		}
		return "", "", err
	}
	return p, filepath.Dir(arg), nil
}

// badInput are the errors of an import that mean the submitted files are
// wrong, rather than the node's store.
var badInput = []error{meshsource.ErrBadDerivation, fs.ErrNotExist, fs.ErrPermission,
	derivation.ErrSyntax, derivation.ErrTooLarge, derivation.ErrFixedOutput, derivation.ErrNoName,
	derivation.ErrCycle, derivation.ErrWrongOutput,
	store.ErrBadPath, store.ErrBadName, store.ErrBadHash, store.ErrBadReference}

// importError marks an import failure caused by the submitted files as a
// bad request, saying where a missing input must be.
func (n *Node) importError(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %w: an input that is not in this node's store (%s) must sit beside the .drv file that needs it",
			adminapi.ErrBadRequest, err, n.store.RealDir())
	}
	for _, e := range badInput {
		if errors.Is(err, e) {
			return fmt.Errorf("%w: %w", adminapi.ErrBadRequest, err)
		}
	}
	return err
}

// submitCommand builds the Submit command of the imported closures of
// roots: their derivations, inputs first, and the signed records of their
// .drv files and sources as items this node holds.
func (n *Node) submitCommand(roots []store.Path, req adminapi.SubmitRequest) (scheduler.Submit, error) {
	cmd := scheduler.Submit{Time: time.Now(), Submitter: req.Submitter, Node: n.mesh.ID(), Priority: req.Priority}
	drvs, err := meshsource.Graph(n.store, roots...)
	if err != nil {
		return cmd, fmt.Errorf("read imported derivations: %w", err)
	}
	requested := make(map[store.Path]bool, len(roots))
	for _, r := range roots {
		requested[r] = true
	}
	paths := make([]store.Path, len(drvs))
	for i := range drvs {
		paths[i] = store.Path(drvs[i].Path)
		drvs[i].Force = req.Force && requested[paths[i]]
	}
	cmd.Derivations = drvs
	if cmd.Items, err = n.signer.Items(n.store, paths...); err != nil {
		return cmd, fmt.Errorf("records of the submitted items: %w", err)
	}
	return cmd, nil
}

// applySubmit commits cmd, split into batches, and returns the build id of
// every derivation and the highest Raft index that committed a batch: a
// replica that applied it knows every build. Submitting is idempotent, so
// a batch applied twice across a leader change does no harm.
func (n *Node) applySubmit(ctx context.Context, cmd scheduler.Submit) (map[string]scheduler.BuildID, uint64, error) {
	parts, err := scheduler.SplitSubmit(cmd, submitBatch)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", adminapi.ErrBadRequest, err)
	}
	ids := make(map[string]scheduler.BuildID, len(cmd.Derivations))
	var last uint64
	for i := range parts {
		resp, index, err := n.mesh.ApplyIndexed(ctx, scheduler.Encode(&parts[i]))
		if err != nil {
			return nil, 0, fmt.Errorf("submit: %w", err)
		}
		last = max(last, index)
		got, err := scheduler.DecodeSubmitResponse(resp)
		if err != nil || len(got) != len(parts[i].Derivations) {
			return nil, 0, fmt.Errorf("submit: bad answer for %d derivations: %d ids, %v", len(parts[i].Derivations), len(got), err)
		}
		for j, d := range parts[i].Derivations {
			ids[d.Path] = got[j]
		}
	}
	return ids, last, nil
}

// submitResult lists the submitted builds with their states.
func (n *Node) submitResult(roots []store.Path, drvs []scheduler.Derivation, ids map[string]scheduler.BuildID) adminapi.SubmitResult {
	res := adminapi.SubmitResult{Roots: []adminapi.SubmittedBuild{}, Builds: []adminapi.SubmittedBuild{}}
	n.fsm.Read(func(st *scheduler.State) {
		entry := func(drv string) adminapi.SubmittedBuild {
			// A follower's replica may not have applied the Submit the
			// leader just committed; the build exists, its state is not
			// known here yet.
			b := adminapi.SubmittedBuild{ID: uint64(ids[drv]), Derivation: drv, State: "submitted"}
			if info, ok := st.Build(ids[drv]); ok {
				b.State = info.State.String()
			}
			return b
		}
		for _, r := range roots {
			res.Roots = append(res.Roots, entry(string(r)))
		}
		for _, d := range drvs {
			res.Builds = append(res.Builds, entry(d.Path))
		}
	})
	return res
}
