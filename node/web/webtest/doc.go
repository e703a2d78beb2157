// Package webtest is an in-memory web.Backend for tests of the status server
// and of code that serves it: a real scheduler.FSM driven by real commands
// (Join, Submit, Allocate, Start, Succeed, Fail), with members, Raft state
// and build logs set directly. A node's Backend is tested against the same
// expectations.
//
// Browser drives a headless Chromium against a status server, in-memory or
// a real node's, collecting console errors and taking screenshots.
//
// It is test support: nothing in a running node uses it.
package webtest
