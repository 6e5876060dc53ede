// Command hostcall forwards a host call described by its payload, so host
// tests can drive routing and capability checks from inside a real actor.
//
// Call.Forward takes a msgpack map {binding, namespace, operation, payload}
// and returns the reply payload unchanged, or the host's error message,
// verbatim, as the guest error. Call.Answer takes the same map and answers
// the host's error message as its reply, after "host error: ".
package main

import (
	"errors"
	"fmt"

	"github.com/latticed/latticed/actor"
	"github.com/latticed/latticed/wire"
)

// forward is the Call.Forward argument.
type forward struct {
	binding, namespace, operation string
	payload                       []byte
}

// decodeForward reads the Call.Forward map; payload may be bin or str (what
// `latticed ctl call --data` sends for a JSON string).
func decodeForward(p []byte) (forward, error) {
	var f forward
	err := wire.ReadMap(p, func(r *wire.Reader, key []byte) (err error) {
		switch string(key) {
		case "binding":
			f.binding, err = r.Str()
		case "namespace":
			f.namespace, err = r.Str()
		case "operation":
			f.operation, err = r.Str()
		case "payload":
			f.payload, err = r.Bytes()
		default:
			err = r.Skip()
		}
		return err
	})
	if err != nil {
		return forward{}, fmt.Errorf("decode Call.Forward argument: %w", err)
	}
	return f, nil
}

func init() {
	actor.Handle("Call.Forward", func(p []byte) ([]byte, error) {
		return forwardThen(p, func(msg string) ([]byte, error) { return nil, errors.New(msg) })
	})
	// Call.Answer is Call.Forward for an actor that copes with a failed host
	// call: it answers (successfully) with the host's error text after
	// hostErrorPrefix, so tests see exactly what __host_error gave it.
	actor.Handle("Call.Answer", func(p []byte) ([]byte, error) {
		return forwardThen(p, func(msg string) ([]byte, error) { return []byte(hostErrorPrefix + msg), nil })
	})
}

// forwardThen performs the host call p describes and returns its reply, or
// what onHostErr makes of the host's error message.
func forwardThen(p []byte, onHostErr func(msg string) ([]byte, error)) ([]byte, error) {
	f, err := decodeForward(p)
	if err != nil {
		return nil, err
	}
	reply, err := actor.HostCall(f.binding, f.namespace, f.operation, f.payload)
	var hostErr *actor.HostError
	if errors.As(err, &hostErr) {
		return onHostErr(hostErr.Message)
	}
	return reply, err
}

// hostErrorPrefix starts Call.Answer's reply when the host call failed.
const hostErrorPrefix = "host error: "

func main() {}
