// Command kvcounter counts HTTP requests in a key-value store: each request
// increments the key "counter" through the link named "default" and the
// reply is {"counter": N}.
//
// Build (in actor/, the SDK module): GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o kvcounter.wasm ./examples/kvcounter
package main

import (
	"encoding/json"

	"github.com/latticed/latticed/actor"
	"github.com/latticed/latticed/wire"
)

const counterKey = "counter"

func init() {
	actor.HandleHTTP(func(wire.HTTPRequest) (wire.HTTPResponse, error) {
		n, err := actor.KVIncrement(actor.DefaultLink, counterKey, 1)
		if err != nil {
			// The error names lattice internals (subjects, provider keys):
			// it goes back as a guest error, which the HTTP server provider
			// logs under a request id and answers with a short 500.
			return wire.HTTPResponse{}, err
		}
		body, err := json.Marshal(struct {
			Counter int32 `json:"counter"`
		}{n})
		if err != nil {
			return wire.HTTPResponse{}, err
		}
		return wire.HTTPResponse{
			StatusCode: 200,
			Header:     map[string][]string{"Content-Type": {"application/json"}},
			Body:       body,
		}, nil
	})
}

// main is not run in a reactor module; see init.
func main() {}
