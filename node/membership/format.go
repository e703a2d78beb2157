package membership

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tbfg/tbfg-node/mesh"
	"github.com/tbfg/tbfg-node/scheduler"
)

// ErrMeshTooOld means a member reads only replicated formats older than this
// binary still writes: the node refuses to run in that mesh.
var ErrMeshTooOld = errors.New("mesh too old for this tbfg-node")

// FormatOf is the highest replicated format member m reads, as it gossips
// it. A member that gossips none reads format 1: it is older than the field,
// or not heard yet, and counting it as the oldest keeps newer commands back
// until it is heard.
func FormatOf(m mesh.Member) int {
	if m.Status == nil || m.Status.Format < 1 {
		return 1
	}
	return m.Status.Format
}

// MeshFormat is the highest replicated format every member reads, at most
// scheduler.FormatVersion, and the ID of a member that reads no more when
// that is below scheduler.FormatVersion (the one holding the mesh back),
// else "".
func MeshFormat(members []mesh.Member) (format int, oldest string) {
	format = scheduler.FormatVersion
	for _, m := range members {
		if f := FormatOf(m); f < format {
			format, oldest = f, m.ID
		}
	}
	return format, oldest
}

// MeshFormat is the highest replicated format every member of this node's
// mesh reads, at most scheduler.FormatVersion. It is the gate for new
// commands: a writer proposes a command of format N only when MeshFormat
// is at least N, and otherwise writes what the older format allows (see
// scheduler's DESIGN.md, "Upgrades").
func (m *Membership) MeshFormat() int {
	f, _ := MeshFormat(m.cfg.Mesh.Members())
	return f
}

// CheckMeshFormat returns an error wrapping ErrMeshTooOld when a member
// heard by gossip reads only formats below minFormat (this binary's
// scheduler.MinFormat), naming the member, its version and the version to
// upgrade it past. self is this node's version, for the message.
func CheckMeshFormat(members []mesh.Member, minFormat int, self string) error {
	for _, m := range members {
		if m.Status == nil || FormatOf(m) >= minFormat {
			continue
		}
		return fmt.Errorf("%w: member %s runs tbfg-node %s, which reads replicated formats up to %d; "+
			"this tbfg-node (%s) writes format %d at least: upgrade %s first, to a version that reads format %d "+
			"(two consecutive versions mesh; upgrade one version at a time)",
			ErrMeshTooOld, m.ID, versionOf(m), FormatOf(m), self, minFormat, m.ID, minFormat)
	}
	return nil
}

// UpgradeHint names the members that read format, with their versions, for
// the message of a node that cannot: "" when no member is known to.
func UpgradeHint(members []mesh.Member, format int) string {
	var have []string
	for _, m := range members {
		if m.Status != nil && FormatOf(m) >= format {
			have = append(have, fmt.Sprintf("%s runs %s", m.ID, versionOf(m)))
		}
	}
	if len(have) == 0 {
		return ""
	}
	slices.Sort(have)
	return fmt.Sprintf("members that read format %d: %s", format, strings.Join(have, ", "))
}

func versionOf(m mesh.Member) string {
	if m.Status == nil || m.Status.Version == "" {
		return "(unknown version)"
	}
	return m.Status.Version
}
