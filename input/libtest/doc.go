// Package libtest proves that the collector library (input/flows,
// input/cpu, input/qdisc) is usable from outside this module: its test
// builds testdata/libuser, a Go module of its own, and runs it in a test
// namespace. An import of an internal package, or of a type only this
// module can name, would not compile there. The package has no code.
package libtest
