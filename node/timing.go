package node

import "github.com/tbfg/tbfg-node/mesh"

// timings maps each --raft-profile to the mesh's timing.
func timings() map[string]mesh.Timing {
	return map[string]mesh.Timing{
		ProfileDefault: mesh.DefaultTiming,
		ProfileLAN:     mesh.LANTiming,
		ProfileTest:    mesh.TestTiming,
	}
}
