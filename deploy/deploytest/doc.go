// Package deploytest checks the deployment files at the repository root
// (docker-compose.yaml, Dockerfile, .dockerignore) against the code they
// deploy. Docker is not needed: the files are parsed with the libraries
// Docker itself uses (compose-go, BuildKit's Dockerfile parser, moby's
// patternmatcher), so a renamed variable, a Go version bump or a new program
// that the image forgets fails `go test` instead of a deployment. The
// package has only tests.
package deploytest
