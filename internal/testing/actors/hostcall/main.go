// Command hostcall forwards a host call described by its payload, so host
// tests can drive routing and capability checks from inside a real actor.
//
// Call.Forward takes a msgpack map {binding, namespace, operation, payload}
// and returns the reply payload unchanged, or the host's error message,
// verbatim, as the guest error.
package main

import (
	"errors"

	"github.com/latticed/latticed/actor"
)

// forward is the Call.Forward argument.
type forward struct {
	Binding   string `msgpack:"binding"`
	Namespace string `msgpack:"namespace"`
	Operation string `msgpack:"operation"`
	Payload   []byte `msgpack:"payload"`
}

func init() {
	actor.Handle("Call.Forward", func(p []byte) ([]byte, error) {
		var f forward
		if err := actor.Unmarshal(p, &f); err != nil {
			return nil, err
		}
		reply, err := actor.HostCall(f.Binding, f.Namespace, f.Operation, f.Payload)
		var hostErr *actor.HostError
		if errors.As(err, &hostErr) {
			return nil, errors.New(hostErr.Message)
		}
		return reply, err
	})
}

func main() {}
