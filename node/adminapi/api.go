package adminapi

import (
	"time"

	"github.com/tbfg/tbfg-node/mesh"
)

// States of a node, as Status.State reports them.
const (
	StateStarting = "starting" // admin API up, mesh starting or joining
	StateRunning  = "running"  // member of the mesh
	StateStopping = "stopping" // shutting down
)

// Status is this node's answer to GET /v1/status. Scripts rely on the JSON
// names; add fields, never rename them.
type Status struct {
	// ID is this node's peer ID, empty until the mesh has started.
	ID string `json:"id"`
	// Leader is the leader's peer ID, empty if none is known.
	Leader string `json:"leader"`
	// State is starting, running or stopping.
	State string `json:"state"`
	// Addresses are the multiaddrs this node announces.
	Addresses []string `json:"addresses"`
	// Members and Voters count the Raft configuration as this node sees it.
	Members int `json:"members"`
	Voters  int `json:"voters"`
	// DataDir is the node's data directory.
	DataDir string `json:"data_dir"`
	// AppliedIndex is the Raft index of the last command this node's
	// replica of the build queue applied: a read that names it as
	// ReadAt.Index on any node sees at least this state.
	AppliedIndex uint64 `json:"applied_index"`
	// RelayedBytes counts the bytes this node's relay service forwarded
	// between other members since it started; absent when none.
	RelayedBytes uint64 `json:"relayed_bytes,omitempty"`
	// ConnBytes counts what this node's own streams carried, over direct
	// and over relayed connections, since it started.
	ConnBytes mesh.ConnBytes `json:"conn_bytes"`
	// The local status this node gossips, flattened into the object.
	mesh.NodeStatus
}

// NodeView is one member in the answer to GET /v1/nodes: its place in the Raft
// configuration and, flattened, the last status it gossiped (absent if none
// was heard yet). Scripts rely on the JSON names.
type NodeView struct {
	ID        string     `json:"id"`
	Addresses []string   `json:"addresses"`
	Suffrage  string     `json:"suffrage"` // "voter" or "nonvoter"
	Leader    bool       `json:"leader"`
	Self      bool       `json:"self"`
	LastSeen  *time.Time `json:"last_seen"` // null if never heard by gossip
	// Conn is how the answering node is connected to this one: "direct",
	// "relayed" (through a relaying member) or "" (not connected, or self).
	Conn string `json:"conn"`
	// Reachability is set on the answering node's own entry: "public",
	// "private" or "unknown", as AutoNAT found.
	Reachability string `json:"reachability,omitempty"`
	*mesh.NodeStatus
}

// LeaveResult is the answer to POST /v1/leave.
type LeaveResult struct {
	ID string `json:"id"`
}

// apiError is the body of every error answer: the node's text, and the
// kind of error (see errorKinds) when it is one of the package's.
type apiError struct {
	Error string `json:"error"`
	Kind  string `json:"kind,omitempty"`
}

// NewNodeView converts a mesh member for the API; self is this node's peer
// ID.
func NewNodeView(m mesh.Member, self string) NodeView {
	v := NodeView{
		ID:           m.ID,
		Addresses:    m.Addresses,
		Suffrage:     m.Suffrage,
		Leader:       m.Leader,
		Self:         m.ID == self,
		Conn:         m.Conn,
		Reachability: m.Reachability,
		NodeStatus:   m.Status,
	}
	if v.Addresses == nil {
		v.Addresses = []string{}
	}
	if !m.LastSeen.IsZero() {
		t := m.LastSeen.UTC()
		v.LastSeen = &t
	}
	return v
}

// ACLView is the answer to GET /v1/acl: the keys of every member registered
// in the build queue (members that left included: the narinfos they signed
// are still served), the ACL of them all in the format of /etc/guix/acl,
// and their Nix keys for Nix's trusted-public-keys. Scripts rely on the
// JSON names.
type ACLView struct {
	// ACL is the Guix ACL s-expression (pki.ACL.Marshal) of every key.
	ACL string `json:"acl"`
	// NixKeys are the members' Nix public keys (name:base64), each once, in
	// registration order: the value of trusted-public-keys in nix.conf.
	NixKeys []string `json:"nix_keys"`
	// Members are the registered members with their keys, in registration
	// order.
	Members []ACLMember `json:"members"`
}

// ACLMember is one member's entry in ACLView.
type ACLMember struct {
	ID     string `json:"id"`
	Status string `json:"status"`  // active, lost or left
	Key    string `json:"key"`     // Guix public key, as signing-key.pub holds it
	NixKey string `json:"nix_key"` // Nix public key, name:base64; "" if none
}

// SubmitRequest is the body of POST /v1/submit.
type SubmitRequest struct {
	// Derivations are .drv store paths valid in the node's store, or
	// absolute names of .drv files in a copy of a store: a directory that
	// holds each file under its store base name, with the .drv files of its
	// inputs and its input sources beside it (sources valid in the node's
	// store need not be).
	Derivations []string `json:"derivations"`
	// Priority of the builds; a derivation already queued keeps the higher.
	Priority int32 `json:"priority"`
	// Force builds the requested derivations even if their outputs are
	// available or known to fail.
	Force bool `json:"force"`
	// Submitter names who asked, for status pages.
	Submitter string `json:"submitter"`
}

// SubmitResult is the answer to POST /v1/submit.
type SubmitResult struct {
	// Roots are the builds of the requested derivations, in request order.
	Roots []SubmittedBuild `json:"roots"`
	// Builds are all the builds of the submitted graph, inputs first.
	Builds []SubmittedBuild `json:"builds"`
	// Index is the Raft index that committed the submission (of a graph
	// sent in batches, the last one's). A read on any node that waits for
	// it (ReadAt) sees every build of Builds.
	Index uint64 `json:"index"`
}

// SubmittedBuild is one build of a submission, with its state right after as
// this node's replica knows it ("submitted" when the replica has not applied
// the submission yet).
type SubmittedBuild struct {
	ID         uint64 `json:"id"`
	Derivation string `json:"derivation"`
	State      string `json:"state"`
}

// BuildQuery selects builds for GET /v1/builds. The zero value selects
// every build.
type BuildQuery struct {
	// IDs selects these builds, in this order (?id=1&id=2 or ?id=1,2); an
	// unknown id is an error.
	IDs []uint64
	// States keeps only builds in one of these states (?state=queued).
	States []string
	// After skips builds with ids up to this one (?after=N), for paging.
	After uint64
	// Limit returns at most this many builds (?limit=N); 0 means all.
	Limit int
}

// BuildView is one build in the answer to GET /v1/builds. Scripts rely on
// the JSON names; add fields, never rename them. Times are null until the
// build gets there.
type BuildView struct {
	ID         uint64            `json:"id"`
	Derivation string            `json:"derivation"`
	System     string            `json:"system"`
	State      string            `json:"state"`
	Reason     string            `json:"reason,omitempty"` // why it last failed
	Message    string            `json:"message,omitempty"`
	Attempt    int               `json:"attempt"`
	Node       string            `json:"node"`                // allocated node, while allocated or running
	LastNode   string            `json:"last_node,omitempty"` // node of the latest attempt, also once the build ended
	Priority   int32             `json:"priority"`
	Submitter  string            `json:"submitter"`
	Outputs    map[string]string `json:"outputs"` // output name → store path
	Inputs     []string          `json:"inputs"`  // store paths it needs
	Submitted  *time.Time        `json:"submitted"`
	Allocated  *time.Time        `json:"allocated"`
	Started    *time.Time        `json:"started"`
	Finished   *time.Time        `json:"finished"`
	NotBefore  *time.Time        `json:"not_before"` // back-off after a transient failure
	// Cause is the build whose failure made this one failed-dependency (the
	// first failed input found), while it is; 0 otherwise.
	Cause uint64 `json:"cause,omitempty"`
	// Timeline is what the answering node saw of the latest attempt when it
	// ran the build itself; nil on other nodes.
	Timeline *Timeline `json:"timeline,omitempty"`
}

// Timeline is the part of a build's timeline read from the clock of the node
// that ran it (Submitted, Allocated, Started and Finished of a BuildView are
// the leader's and the builder's times committed in the replicated state):
// when its agent saw the allocation, had the inputs in its store, started
// the builder, saw it exit, had the outputs added and signed, and had the
// outcome committed. A step not reached is nil.
type Timeline struct {
	Attempt   int        `json:"attempt"`
	Seen      *time.Time `json:"seen"`
	Fetched   *time.Time `json:"fetched"`
	Exec      *time.Time `json:"exec"`
	Exited    *time.Time `json:"exited"`
	Published *time.Time `json:"published"`
	Committed *time.Time `json:"committed"`
}

// ReadAt is the state a read must see, given to Client.At: the node answers
// once its replica has applied the Raft index Index (the Index of a
// SubmitResult, a Changes or an ActionResult, or a Status's AppliedIndex,
// read on any node), waiting at most Wait (DefaultWait if 0, at most
// MaxWait), or fails with ErrIndexWait. The zero value reads at once.
type ReadAt struct {
	Index uint64
	Wait  time.Duration
}

// Changes is the answer to GET /v1/changes: which builds changed after the
// cursor of an earlier answer. A client that follows builds reads the ones
// it cares about again, with ReadAt{Index: Index}.
type Changes struct {
	// Cursor is where the next call starts (?cursor=): it lists the
	// changes after this answer.
	Cursor string `json:"cursor"`
	// Index is the Raft index the replica had applied when answering: a
	// read at it sees every change listed.
	Index uint64 `json:"index"`
	// Builds are the ids of the builds that changed state or node (new
	// builds included), ascending, each once.
	Builds []uint64 `json:"builds"`
	// Reset means any build may have changed, and Builds does not say
	// which: the cursor was empty, from another node or process, or too
	// old, a snapshot replaced the state, or too many builds changed. Read
	// every build followed again.
	Reset bool `json:"reset"`
}

// ActionRequest is the body of POST /v1/cancel and POST /v1/retry.
type ActionRequest struct {
	// Builds are the ids of the builds to act on; an unknown one fails the
	// whole request, and nothing is done.
	Builds []uint64 `json:"builds"`
}

// ActionResult is the answer to POST /v1/cancel and POST /v1/retry.
type ActionResult struct {
	// Index is the Raft index that committed the command.
	Index uint64 `json:"index"`
	// Builds are the builds of the request, in its order, as this node's
	// replica knows them once it applied Index.
	Builds []BuildView `json:"builds"`
}
