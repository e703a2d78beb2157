// Package hostinfo reads what a node tells the mesh about its machine: the
// system types it builds for, its load and the free space of a file system.
// It reads the running host only (Linux /proc and statfs) and knows nothing
// of the mesh.
package hostinfo
