// Package testlog routes the log/slog output of components under test to
// testing.TB.Log, one prefix per component, so that a test's logs appear with
// its result and interleave in order across nodes. It is for tests only.
package testlog
