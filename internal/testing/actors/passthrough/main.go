// Command passthrough is an HTTP actor that answers every request with its
// own body, byte for byte, and status 200: the pass-through actor the
// payload benchmarks and the large-body round-trip test use.
package main

import (
	"github.com/latticed/latticed/actor"
	"github.com/latticed/latticed/wire"
)

func init() {
	actor.HandleHTTP(func(req wire.HTTPRequest) (wire.HTTPResponse, error) {
		return wire.HTTPResponse{StatusCode: 200, Body: req.Body}, nil
	})
}

func main() {}
