// Package gc keeps a node's store within its bounds, --store-max (the sum
// of its items' NAR sizes) and --min-free (free space on its disk), without
// ever losing an item the mesh promised to keep.
//
// A Collector wakes on a tick (and when `tbfg-node gc` asks), works out how
// many bytes to free, and lets Choose pick the items: a pure function of the
// store's items (size, references, last use), what the replicated state says
// of each (active holders, whether an unfinished build needs it, whether
// this node built it) and the limits. It removes, each class least recently
// used first: items this node holds without being recorded as a holder
// (inputs fetched for builds), then replica copies held by more members than
// --replicas, then outputs this node built that enough others hold. It never
// removes an item an unfinished build needs (its .drv, an input, or an
// output being published), one used within the grace period, one whose
// removal would leave fewer than --replicas active holders, nor one that a
// staying item refers to.
//
// Copies this node is recorded as holding are first committed as no longer
// held (HolderRemoved), and only then removed from the store (store/local
// Remove, crash-safe): at no time does the state name this node as the
// holder of a copy it no longer has, so no member routes a fetch to it. The
// replicator (package replicate) makes up any shortfall later, e.g. after a
// holder left.
//
// The package knows nothing of how commands reach the leader nor of how
// the store is laid out on disk: the Applier and the Store are small
// interfaces. See DESIGN.md for the reasons behind the rules.
package gc
