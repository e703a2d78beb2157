// Package node is the composition root of one running tbfg-node: configuration
// (Config, Validate), the data directory, start and stop order of the
// components (New, Run), the status this node gossips, its place in the
// replicated build queue, and the backend of the local admin API that the
// command-line interface uses (package adminapi).
//
// The data directory (default /var/lib/tbfg for root, else
// $XDG_STATE_HOME/tbfg) is mode 0700 and holds:
//
//	mesh.secret          the mesh secret: 64 hexadecimal digits and a newline,
//	                     0600; the same text init prints and join --secret takes
//	signing-key.sec/.pub the node's Guix signing key pair, as `guix archive
//	                     --generate-key` writes it (secret 0600); the public
//	                     key is gossiped and registered in the build queue
//	nix-signing-key.sec/.pub
//	                     the node's Nix signing key pair, name:base64, named
//	                     <hostname>-1 (secret 0600)
//	store/, store.db     the built-in store: items of the logical store
//	                     directory --store-dir (default /gnu/store) and their
//	                     database; submitted .drv files are imported here
//	logs/                one gzip build log per derivation, <drv base>.gz
//	nar-cache/           the substitute server's NAR cache (--nar-cache-size)
//	builds/              the builtin executor's build directories
//	admin.sock           the admin API: HTTP with JSON bodies on a unix socket, 0600
//	lock                 flock(2)ed by the running node, so two never share a data dir
//
// and the mesh's own files (identity, Raft state, address book). Missing
// keys are created when the node starts (init, join or run), before it
// joins the mesh; existing ones are kept.
//
// Start order (Run; stop is the reverse): the data dir lock, the keys, the
// store and the executor over it; the admin API; the mesh; then what needs
// the mesh: the mesh source (meshsource.Source, answering the members' NAR
// and log streams), the substitute server on --substitute-listen (package
// publish, NAR cache in nar-cache/, the node's Guix public key as
// /signing-key.pub) with its DNS-SD advertisement as
// guix-publish-<hostname> on --interface (not with --no-advertise, nor with
// --no-mdns: a node told not to use multicast DNS sends none), scheduling,
// the build agent (package agent), which waits until the local replica lists
// this node as registered, so that the builds it shows running here are
// orphans of an earlier run, and last the replicator (package replicate),
// which also waits for that registration and then copies store items from
// their holders into this node's store until --replicas members (default 2)
// hold each, so that outputs outlive the node that built them. The node
// gossips its substitute URL
// (http://<listen IP, or first announced IPv4>:<port>), its Guix public key
// and the number of builds its agent runs.
//
// The executor is builtin (no daemon; /bin/sh in builds is /bin/busybox when
// the host has it) or nix (--nix-store URI; /bin/sh=/bin/busybox is added to
// Nix's sandbox paths when the host has busybox, and outputs are read back
// with `nix store dump-path`) or guix (the local guix-daemon through `guix
// build`, with this node's own substitute server first in --substitute-urls
// so that the .drv files and inputs come from the mesh; outputs are read
// from the daemon's store). The agent runs up to --max-builds builds,
// beyond the first only while the 1-minute load is below the number of
// cores, each bounded by --build-timeout and --max-silent.
//
// The replicated state is the scheduler's FSM. Once the mesh has started,
// the node registers itself with NodeJoined (its Guix and Nix public keys,
// systems, features and max builds), again whenever the state has lost it. While it
// leads, it runs the scheduler's allocation loop over the members' gossip
// (leadership is checked on every tick), and declares lost (NodeLost) the
// members that left the Raft configuration or were silent past
// --remove-after, which re-queues their builds. A node that leaves commits
// NodeLeft first.
//
// The mesh secret is stored in the data dir only once the mesh has started
// (for init, once Raft is bootstrapped), so an init that failed earlier can
// be run again.
//
// The admin API (package adminapi: status, nodes, leave, submit, builds,
// acl) is served over the node: Node is its Backend.
//
// A submitted derivation is a .drv store path valid in the node's store, or
// a .drv file in a copy of a store: a directory holding each .drv under its
// store base name, where its inputs are read too. Every output path, every
// .drv path and every input source of the closure must recompute (sources
// valid in the node's store are not read again); see meshsource.ImportDrvs.
// The closure is imported into the store, inputs first, and submitted as one
// graph (split into batches when large), with signed records of its .drv
// files and sources as items this node holds.
//
// The package does not know how the mesh works inside, nor how builds are
// scheduled or run: it only wires the parts together.
package node
