// Package meshsource gives a node access to every store item the mesh holds,
// through the replicated state: it is the substitute server's Source and the
// agent's Fetcher.
//
// Source answers the substitute server for any item recorded in the
// scheduler's state: the narinfo is the one its builder signed (Item.Narinfo),
// parsed; the NAR comes from the node's own store when the item is valid
// there, else from a holder through Remote (the mesh's peer streams; StoreRemote
// is the in-memory implementation for tests); the build log comes from the
// node's log directory (package buildlog), where the agent writes it, or
// from the member that ran the build. OpenLocalNAR is
// what the mesh's handler of peer NAR requests serves: local items only, so a
// request never travels on to a third node.
//
// Fetcher brings items into the local store: for each missing path it takes
// the narinfo from the state, checks its Guix signature against the ACL of the
// member keys in the state (every member registers its public key with
// NodeJoined), fetches the references first, then opens the NAR (locally or
// from a holder) and adds it with local.Store.AddFromNAR, which checks NarHash
// and NarSize before anything becomes visible. Unsigned narinfos, narinfos
// signed by a key no member registered, and narinfos that disagree with the
// state's record are refused.
//
// Signer makes the signed narinfos a node records in the state: Guix's
// Signature line and, when the node has a Nix key, Nix's Sig line.
//
// ImportDrvs adds a .drv closure found in a directory (a copy of a store, e.g.
// the real directory of a chroot store) to the local store after checking that
// every .drv path, its output paths and every source path recompute from their
// contents; Graph turns .drv files of the local store into the derivations of
// a Submit command.
//
// StreamRemote is the Remote (and LogRemote, for build logs) over the mesh's
// peer streams "nar" and "log", which ServeStreams answers on every node from
// its own store (OpenLocalNAR) and log directory only: a request names one
// store path in a small bounded frame, checked on both ends, and the answer is
// a status (ok, not held, or a bounded error text) then the raw bytes; a log
// request may also name an offset and ask to follow the log while it is
// written, and is then answered in frames with keep-alives. Through it,
// Source.Log finds the log of a build another member ran, and
// Source.BuildLog reads any build's log from any offset, following it live
// from whichever member runs the build.
//
// The package knows nothing about how peers are reached beyond the small
// StreamMesh interface (*mesh.Mesh implements it), nor about HTTP (package
// publish serves a Source).
package meshsource
