// Command provider-keyvalue is latticed's built-in wasmcloud:keyvalue
// provider (NATS JetStream KV) as a standalone executable, for provider
// archives (make providers): started by a host with no arguments, HostData
// on stdin. It behaves exactly as `latticed provider keyvalue`.
package main

import (
	"os"

	"github.com/latticed/latticed/internal/builtin/keyvalue"
	"github.com/latticed/latticed/internal/providermain"
)

func main() { os.Exit(providermain.Run(keyvalue.New())) }
