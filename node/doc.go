// Package node is the composition root of one running tbfg-node: its
// configuration (Config, DefaultConfig, Validate) and the start and stop
// order of its components (New, Run). Tests build nodes through New too.
// Each concern is a subpackage:
//
//	adminapi    the local admin API: wire types, the HTTP handler over a
//	            Backend, and the Client the command line uses; Node is the
//	            Backend (backend.go, submit.go, actions.go, and
//	            readindex.go: reads at a Raft index, changes after a cursor)
//	datadir     the data directory: the names of its files, its lock, the
//	            mesh secret and the signing keys stored in it
//	membership  this node's registration in the build queue, leaving it,
//	            and the leader-only loops (allocation, declaring members
//	            lost)
//	agent       the build loop: runs the builds allocated to this node
//	executor    how one build runs: builtin, nix or guix
//	meshsource  mesh-wide store reads: NARs and logs from any member, and
//	            the import of submitted .drv closures
//	replicate   copies store items until --replicas members hold each
//	gc          keeps the store under --store-max and its disk above
//	            --min-free, removing what the mesh can spare (collector.go
//	            wires it; `tbfg-node gc` runs it through the admin API)
//	buildlog    the build log directory: live logs while builds run,
//	            gzipped once they end, read from any offset and followed,
//	            pruned by --log-max-age and --log-max-size
//	            (logretention.go)
//	web         the status server: pages, JSON API, /events, /healthz and
//	            /readyz on --http-listen; the node is its Backend
//	            (status.go), OpenLog (logs.go) its way to any build's log
//	metrics     the Prometheus registry behind /metrics, fed by the
//	            replica, Raft, the mesh, the replicator, the agent and the
//	            substitute server
//
// The plumbing it shares with other packages is in internal/: loops (the
// background loops and their stop order), hostinfo (what the node gossips
// about its machine), atomicfile.
//
// Start order (Run; stop is the reverse, the background loops through one
// group of internal/loops): the data dir lock, the build log directory
// (finishing the live logs of an earlier run), the keys, the store and the
// executor over it; the status server's listener on --http-listen (default
// 127.0.0.1:8767, first of all listeners, so that a busy port fails the
// start before anything else is set up); the admin API; the status server
// itself, which answers /readyz with its reason while the node joins, and
// a loop that tells its pages of membership and leader changes (both stop
// after everything started later, before the mesh closes, which they read);
// the mesh; then what needs
// the mesh: the mesh source (meshsource.Source, answering the members' NAR
// and log streams), the substitute server on --substitute-listen (package
// publish, NAR cache in nar-cache/, the node's Guix public key as
// /signing-key.pub) with its DNS-SD advertisement as
// guix-publish-<hostname> on --interface (not with --no-advertise, nor with
// --no-mdns: a node told not to use multicast DNS sends none), membership,
// the build agent (package agent), which waits until the local replica lists
// this node as registered, so that the builds it shows running here are
// orphans of an earlier run, and last the replicator (package replicate),
// which also waits for that registration and then copies store items from
// their holders into this node's store until --replicas members (default 2)
// hold each, so that outputs outlive the node that built them, and after
// it the store collector (package gc), which waits for the registration
// too and, every --gc-interval, removes what the mesh can spare while the
// store is over --store-max or its disk below --min-free, committing each
// copy it gives up as no longer held before its files go. Membership is
// followed by the build log retention loop, which every 10 minutes removes
// the logs past --log-max-age (a failed build's: four times that) or beyond
// --log-max-size, oldest and successful builds' first. The node
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
// beyond the first only while the 1-minute load is below --max-load (or the
// number of cores), each bounded by --build-timeout and --max-silent. The
// node gossips --max-load, so that the leader allocates nothing to it at or
// above that load, and a speed measured once at start
// (hostinfo.Speed), by which the leader prefers faster members.
//
// The replicated state is the scheduler's FSM. Package membership registers
// the node in it once the mesh has started (NodeJoined, again whenever the
// state has lost it), commits NodeLeft when the node leaves, and while the
// node leads allocates builds and declares lost the members that left the
// Raft configuration or were silent past --remove-after.
//
// The mesh secret is stored in the data dir only once the mesh has started
// (for init, once Raft is bootstrapped), so an init that failed earlier can
// be run again.
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
