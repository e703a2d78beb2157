// Package loops owns a component's background loops: Group starts each in
// its goroutine, optionally once a gate opens, and Stop cancels and waits
// for them one by one in the reverse of their start order, running the
// cleanups registered between them in their place. A composition root thus
// states its shutdown order once, by the order in which it starts things,
// and adding a loop is one call.
//
// The package knows nothing of what the loops do.
package loops
