// Package kubernetes holds the tests of the kustomize base in this folder.
package kubernetes
