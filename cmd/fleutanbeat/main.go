// Command fleutanbeat is the agent: it runs the configured inputs, the
// processors and exactly one output, as Elastic Beats do.
package main

import (
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}
