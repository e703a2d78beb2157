// Package replicate keeps a second copy (or more) of every store item the
// mesh holds, so that the outputs a node built stay available when that node
// dies.
//
// A Replicator runs on every node. It wakes on every change of the
// replicated scheduler state (FSM.Changes, coalesced) and on a tick, lists
// the items that active members hold fewer than Copies times
// (State.UnderReplicated), and decides for each one which members should
// take the missing copies: the active members that do not hold it, ranked by
// rendezvous hashing of the store path and the member's ID, the first
// Copies−holders of them (Targets). Every node computes the same ranking
// from the same state, so the copies are spread over the mesh without any
// coordination, and each node only acts on the items it was chosen for.
//
// For those items the Replicator fetches the item and its closure into the
// local store through the Fetcher (meshsource.Source verifies every narinfo
// signature and NAR hash on the way), then commits HolderAdded with the
// state's own records of the item and of its direct references, which the
// fetch made valid here too. Items are taken in bounded batches, one at a
// time; a path whose fetch or commit failed is left alone for a back-off
// that doubles per failure, so a missing holder or a full disk never turns
// into a busy loop.
//
// A target that is alive but cannot copy (full disk, holders it cannot
// reach) is stood in for without any agreement: each node remembers since
// when it has seen an item under-replicated with the same holders, and
// after each whole Takeover period of that it counts one more candidate of
// the ranking as chosen, so the next-ranked node takes a copy too. A node
// takes its own share before standing in for others.
//
// When a holder is lost (NodeLost) or leaves, its items count one holder
// fewer and the ranking over the remaining members picks the next node. The
// package knows nothing about how items travel: the Fetcher and the Applier
// (which commits through the leader) are small interfaces.
package replicate
