package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/derivation"
)

// drvCommands lists the "drv" subcommands.
func drvCommands() []command {
	return []command{
		{name: "drv show", summary: "print derivations as JSON, like nix show-derivation", run: drvShow},
		{name: "drv path", summary: "check a derivation's output paths and print its .drv store path", run: drvPath},
	}
}

// drvFlags parses the flags shared by the drv commands and returns the store
// directory and the files named.
func drvFlags(s *stdio, name string, args []string) (store.Dir, []string, error) {
	flags := newFlags(s, name, "FILE...")
	dir := flags.String("store-dir", string(store.GuixDir), "logical store directory the derivations belong to")
	if err := parseFlags(flags, args); err != nil {
		return "", nil, err
	}
	if flags.NArg() == 0 {
		flags.Usage()
		return "", nil, exitCode(2)
	}
	d := store.Dir(*dir)
	if err := d.Validate(); err != nil {
		return "", nil, fmt.Errorf("--store-dir: %w", err)
	}
	return d, flags.Args(), nil
}

// drvFile is one parsed .drv file with the name and store path its contents
// give.
type drvFile struct {
	data []byte
	drv  *derivation.Derivation
	name string
	path store.Path
}

// readDrv reads and parses file. The derivation's name comes from the file
// name when it is a store item's (<hash>-<name>.drv), else from its outputs.
// Errors do not name file; callers add it.
func readDrv(dir store.Dir, file string) (*drvFile, error) {
	data, err := derivation.ReadFile(file)
	if err != nil {
		return nil, err
	}
	d, err := derivation.Parse(data, dir)
	if err != nil {
		return nil, err
	}
	f := &drvFile{data: data, drv: d}
	if p, err := dir.Join(filepath.Base(file)); err == nil {
		f.name, err = derivation.NameFromPath(p)
		if err != nil {
			return nil, err
		}
	} else if f.name, err = d.Name(); err != nil {
		return nil, err
	}
	if f.path, err = derivation.StorePath(dir, d, f.name); err != nil {
		return nil, err
	}
	return f, nil
}

// drvPath checks each FILE and prints its store path. Input derivations are
// read from the directory holding FILE.
func drvPath(_ context.Context, s *stdio, args []string) error {
	dir, files, err := drvFlags(s, "drv path", args)
	if err != nil {
		return err
	}
	failed := false
	for _, file := range files {
		p, err := checkDrv(dir, file)
		if err != nil {
			fmt.Fprintf(s.err, "tbfg-node drv path: %s\n", strings.ReplaceAll(err.Error(), "\n", "\n  "))
			failed = true
			continue
		}
		fmt.Fprintln(s.out, p)
	}
	if failed {
		return exitCode(1)
	}
	return nil
}

// checkDrv is checkFile with errors prefixed by the file name.
func checkDrv(dir store.Dir, file string) (store.Path, error) {
	p, err := checkFile(dir, file)
	if err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	return p, nil
}

// checkFile verifies that file is in canonical form, that every output path
// and output variable recomputes, and that a store-item file name matches
// the contents; it returns the .drv store path.
func checkFile(dir store.Dir, file string) (store.Path, error) {
	f, err := readDrv(dir, file)
	if err != nil {
		return "", err
	}
	h := derivation.NewHasher(dir, derivation.DirLoader{Root: filepath.Dir(file), Dir: dir})
	if err := h.Check(f.drv, f.name); err != nil {
		var oe *derivation.OutputError
		if errors.As(err, &oe) {
			return "", err
		}
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("compute output paths: %w (input derivations are read from %s, the directory holding the file)", err, filepath.Dir(file))
		}
		return "", fmt.Errorf("compute output paths: %w", err)
	}
	if !bytes.Equal(f.drv.Bytes(), f.data) {
		return "", errors.New("not in canonical form (lists sorted, nothing after the closing parenthesis), so it is not a .drv file Guix or Nix wrote")
	}
	if base := filepath.Base(file); strings.HasSuffix(base, ".drv") && base != f.path.Base() {
		if _, err := dir.Join(base); err == nil {
			return "", fmt.Errorf("contents give %s, not the file's name", f.path)
		}
	}
	return f.path, nil
}

// drvShow prints FILE... as one JSON object keyed by .drv store path, in the
// layout of nix show-derivation.
func drvShow(_ context.Context, s *stdio, args []string) error {
	dir, files, err := drvFlags(s, "drv show", args)
	if err != nil {
		return err
	}
	all := make(map[store.Path]showDrv, len(files))
	for _, file := range files {
		f, err := readDrv(dir, file)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		all[f.path] = showOf(f.drv)
	}
	enc := json.NewEncoder(s.out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(all)
}

// showDrv is a derivation as nix show-derivation prints it; the field order
// is Nix's.
type showDrv struct {
	Outputs   map[string]showOutput `json:"outputs"`
	InputSrcs []store.Path          `json:"inputSrcs"`
	InputDrvs map[string][]string   `json:"inputDrvs"`
	System    string                `json:"system"`
	Builder   string                `json:"builder"`
	Args      []string              `json:"args"`
	Env       map[string]string     `json:"env"`
}

type showOutput struct {
	Path     store.Path `json:"path,omitempty"`
	HashAlgo string     `json:"hashAlgo,omitempty"`
	Hash     string     `json:"hash,omitempty"`
}

func showOf(d *derivation.Derivation) showDrv {
	s := showDrv{
		Outputs:   make(map[string]showOutput, len(d.Outputs)),
		InputSrcs: slices.Sorted(slices.Values(d.InputSrcs)),
		InputDrvs: make(map[string][]string, len(d.InputDrvs)),
		System:    d.System,
		Builder:   d.Builder,
		Args:      d.Args,
		Env:       d.Env,
	}
	for id, o := range d.Outputs {
		s.Outputs[id] = showOutput{Path: o.Path, HashAlgo: o.HashAlgo, Hash: o.Hash}
	}
	for p, outs := range d.InputDrvs {
		s.InputDrvs[string(p)] = slices.Sorted(slices.Values(outs))
	}
	if s.InputSrcs == nil {
		s.InputSrcs = []store.Path{}
	}
	return s
}
