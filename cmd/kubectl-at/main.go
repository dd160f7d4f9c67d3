// Command kubectl-at is the kubectl plugin for cnat's At: put it on PATH and
// run `kubectl at create|list|get|logs|wait|rerun`. See internal/plugin.
package main

import (
	"os"
	// --time-zone must resolve IANA names where the OS has no zone database
	// (Windows, minimal containers); it adds about 450 kB.
	_ "time/tzdata"

	"github.com/programming-kubernetes/cnat/internal/plugin"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() { os.Exit(plugin.Main(version)) }
