// Command provider-keyvalue is latticed's built-in wasmcloud:keyvalue
// provider (NATS JetStream KV) as a standalone executable, for provider
// archives (make providers): started by a host with no arguments, HostData
// on stdin. It behaves exactly as `latticed provider keyvalue`.
package main

import (
	"os"

	"github.com/latticed/latticed/internal/builtin/keyvalue"
	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/internal/providermain"
	"github.com/latticed/latticed/provider"
)

func main() {
	os.Exit(providermain.Run(func(m *metrics.Metrics) provider.Capability { return keyvalue.New(m) }))
}
