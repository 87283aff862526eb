// Package depstest checks what the shipped programs (every main package
// under cmd/) link and what the programs' go.mod requires: no package of
// this module that they link may import testing, internal/testenv or the
// benchmark, and the go.mod holds none of the libraries that only the
// benchmark (River) or the deployment tests (compose-go, BuildKit) need.
// Those live in their own modules, bench/ and deploy/. The package has only
// tests.
package depstest
