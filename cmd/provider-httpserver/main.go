// Command provider-httpserver is latticed's built-in wasmcloud:httpserver
// provider as a standalone executable, for provider archives (make
// providers): started by a host with no arguments, HostData on stdin.
// It behaves exactly as `latticed provider httpserver`.
package main

import (
	"os"

	"github.com/latticed/latticed/internal/builtin/httpserver"
	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/internal/providermain"
	"github.com/latticed/latticed/provider"
)

func main() {
	os.Exit(providermain.Run(func(m *metrics.Metrics) provider.Capability { return httpserver.New(m) }))
}
