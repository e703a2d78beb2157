// Package meshtest holds what every test that runs real mesh nodes on
// loopback needs: the settings of a test mesh (secret, listen address,
// gossip and removal timings), starting a node bounded in time and closing
// it with the test, committing with a bounded wait, waits that poll with a
// deadline scaled for slow CI machines, and a logger that keeps libp2p's and
// Raft's chatter out of a test's log unless asked for.
//
// It does not import package mesh, so that mesh's own tests can use it as
// well as the tests of the packages above mesh: each fills a mesh.Config
// from these settings (with mesh.TestTiming) and hands the node to Start.
// It is for tests only.
package meshtest
