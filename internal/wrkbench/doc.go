// Package wrkbench runs the HTTP benchmarks of the substitute server: it
// starts nginx serving static files as the reference, mirrors the files a
// server answers into nginx's root, runs wrk against both in alternation and
// reports each figure and the ratio (x-faster-than-nginx) with
// testing.B.ReportMetric. It is for benchmarks only; wrk and nginx are
// Debian's packages of the same names.
package wrkbench
