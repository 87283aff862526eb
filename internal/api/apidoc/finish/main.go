// Command finish is the second step of `make docs`: go run
// ./internal/api/apidoc/finish docs (see package apidoc).
package main

import (
	"fmt"
	"os"

	"github.com/messaging-server/messaging-server/internal/api/apidoc"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: finish <docs dir>")
		os.Exit(2)
	}
	if err := apidoc.Finish(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
