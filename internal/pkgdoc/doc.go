// Package pkgdoc holds a test that keeps every package of the module documented
// by a doc.go file.
package pkgdoc
