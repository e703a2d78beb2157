package node

import (
	"runtime"

	"github.com/tbfg/tbfg-node/internal/hostinfo"
	tbfgversion "github.com/tbfg/tbfg-node/internal/version"
	"github.com/tbfg/tbfg-node/mesh"
	"github.com/tbfg/tbfg-node/scheduler"
)

// version is the running binary's version as `tbfg-node version` prints it
// (stamped by the Makefile, else the module version, else "devel"), so what
// the node gossips matches what its user sees.
func version() string {
	return tbfgversion.Get().Version
}

// localStatus gathers what this node gossips. Figures it cannot read are
// left zero and logged at debug level, so a missing /proc never stops gossip.
func (n *Node) localStatus() mesh.NodeStatus {
	st := mesh.NodeStatus{
		Systems:   append([]string(nil), n.cfg.Systems...),
		Features:  append([]string{}, n.cfg.Features...), // [] rather than null
		MaxBuilds: n.cfg.MaxBuilds,
		MaxLoad:   n.cfg.MaxLoad,
		MinFree:   uint64(max(n.cfg.MinFree, 0)),
		Speed:     n.speed,
		Cores:     runtime.NumCPU(),
		Version:   n.cfg.Version,
		Format:    scheduler.FormatVersion,
		MinFormat: scheduler.MinFormat,
		// Empty until the substitute server runs, zero until the agent does.
		SubstituteURL: n.SubstituteURL(),
		RunningBuilds: n.runningBuilds(),
	}
	if n.keys != nil {
		st.SigningKey = n.keys.GuixPublic()
	}
	var err error
	if st.Load1, err = hostinfo.Load1(); err != nil {
		n.log.Debug("read load average", "err", err)
	}
	if st.StoreFreeBytes, err = hostinfo.FreeBytes(n.storeRealDir()); err != nil {
		n.log.Debug("free disk of store", "err", err)
	}
	if st.DataFreeBytes, err = hostinfo.FreeBytes(n.cfg.DataDir); err != nil {
		n.log.Debug("free disk of data dir", "err", err)
	}
	return st
}
