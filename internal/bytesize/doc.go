// Package bytesize prints byte counts for people, with binary units ("1.2
// GiB"), the same way on status pages, in the CLI and in the scheduler's
// explanations. It knows nothing of what is counted.
package bytesize
