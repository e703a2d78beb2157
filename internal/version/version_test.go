package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestGetStampedWins(t *testing.T) {
	old, oldC := Version, Commit
	t.Cleanup(func() { Version, Commit = old, oldC })
	Version, Commit = "v9.9.9", "abc123"
	i := Get()
	if i.Version != "v9.9.9" || i.Commit != "abc123" || !strings.HasPrefix(i.Go, "go") {
		t.Fatalf("Get() = %+v", i)
	}
	if s := i.String(); s != "tbfg-node v9.9.9 (commit abc123, "+i.Go+")" {
		t.Fatalf("String() = %q", s)
	}
}

func TestGetNeverEmpty(t *testing.T) {
	old, oldC := Version, Commit
	t.Cleanup(func() { Version, Commit = old, oldC })
	Version, Commit = "", ""
	i := Get()
	if i.Version == "" || i.Commit == "" || i.Go == "" {
		t.Fatalf("Get() has an empty part: %+v", i)
	}
}

func TestVCSRevision(t *testing.T) {
	for _, tc := range []struct {
		in   []debug.BuildSetting
		want string
	}{
		{nil, ""},
		{[]debug.BuildSetting{{Key: "vcs.revision", Value: "f00"}}, "f00"},
		{[]debug.BuildSetting{{Key: "vcs.revision", Value: "f00"}, {Key: "vcs.modified", Value: "true"}}, "f00-dirty"},
		{[]debug.BuildSetting{{Key: "vcs.modified", Value: "true"}}, ""},
	} {
		if got := vcsRevision(tc.in); got != tc.want {
			t.Errorf("vcsRevision(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
