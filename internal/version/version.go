package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Stamped by the Makefile:
//
//	-ldflags "-X github.com/tbfg/tbfg-node/internal/version.Version=v0.3.0 -X github.com/tbfg/tbfg-node/internal/version.Commit=abc123"
//
// Empty when built without them; Get then reads the build info.
var (
	Version string
	Commit  string
)

// Info is what `tbfg-node version` prints.
type Info struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Go      string `json:"go"`
}

// Get returns this binary's version, commit and Go version. Unknown parts
// are "unknown"; a commit built from a dirty tree ends in "-dirty".
func Get() Info {
	i := Info{Version: Version, Commit: Commit, Go: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
		if i.Commit == "" {
			i.Commit = vcsRevision(bi.Settings)
		}
	}
	if i.Version == "" {
		i.Version = "devel"
	}
	if i.Commit == "" {
		i.Commit = "unknown"
	}
	return i
}

func vcsRevision(settings []debug.BuildSetting) string {
	var rev string
	var dirty bool
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev != "" && dirty {
		rev += "-dirty"
	}
	return rev
}

// String is the one-line form: "tbfg-node v0.3.0 (commit abc123, go1.26.8)".
func (i Info) String() string {
	return fmt.Sprintf("tbfg-node %s (commit %s, %s)", i.Version, i.Commit, i.Go)
}
