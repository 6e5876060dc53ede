package actor

import (
	"fmt"

	"github.com/latticed/latticed/wire"
)

// DefaultLink is the link name used when an actor has a single link per
// contract, and the binding the builtin capabilities and actor calls use.
const DefaultLink = "default"

// emptyHeader is the header sent for a nil one: an empty map rather than
// msgpack nil. Encoding only reads it, so one map serves every call.
var emptyHeader = map[string][]string{}

// HandleHTTP registers fn as the actor's wasmcloud:httpserver handler
// (HttpServer.HandleRequest). A zero StatusCode is sent as 200 and nil header
// or body as empty values, matching wasmCloud's HttpResponse defaults so Rust
// providers decode the reply too. An error from fn becomes a guest error,
// which the HTTP provider answers with a 500. The request's strings and body
// are views of the invocation's payload, which only this call holds, not
// copies: fn may keep them, and may write the body's bytes.
func HandleHTTP(fn func(wire.HTTPRequest) (wire.HTTPResponse, error)) {
	Handle(wire.OpHTTPHandleRequest, func(payload []byte) ([]byte, error) {
		// payload is this call's own allocation and no one else sees it,
		// so the request is a view of it: the body without a second copy
		// of a large body inside the actor, the strings without an
		// allocation each. The handler may keep and even write the body;
		// no string overlaps it.
		req, err := wire.DecodeHTTPRequestNoCopy(payload)
		if err != nil {
			return nil, fmt.Errorf("decode HttpRequest: %w", err)
		}
		resp, err := fn(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode == 0 {
			resp.StatusCode = 200
		}
		if resp.Header == nil {
			resp.Header = emptyHeader
		}
		if resp.Body == nil {
			resp.Body = []byte{}
		}
		// One allocation of the exact size, where the reflection encoder
		// grows a buffer and copies the result out of it.
		return resp.Encode(), nil
	})
}

// KVIncrement adds by to the integer stored at key in the key-value store
// linked as binding (KeyValue.Increment) and returns the new value.
func KVIncrement(binding, key string, by int32) (int32, error) {
	reply, err := HostCall(binding, wire.ContractKeyValue, wire.OpKVIncrement,
		(&wire.KVIncrementRequest{Key: key, Value: by}).Encode())
	if err != nil {
		return 0, err
	}
	var n int32
	err = decodeReply(wire.OpKVIncrement, reply, func(r *wire.Reader) (err error) {
		n, err = r.Int32()
		return err
	})
	return n, err
}

// KVGet reads key from the key-value store linked as binding (KeyValue.Get).
// exists is false, and value empty, when the key is absent.
func KVGet(binding, key string) (value string, exists bool, err error) {
	reply, err := HostCall(binding, wire.ContractKeyValue, wire.OpKVGet, encodeStr(key))
	if err != nil {
		return "", false, err
	}
	resp, err := wire.DecodeKVGetResponse(reply)
	if err != nil {
		return "", false, fmt.Errorf("decode %s reply: %w", wire.OpKVGet, err)
	}
	return resp.Value, resp.Exists, nil
}

// KVSet stores value at key in the key-value store linked as binding
// (KeyValue.Set); expires is a lifetime in seconds, 0 for never. The reply,
// if any, is ignored.
func KVSet(binding, key, value string, expires uint32) error {
	_, err := HostCall(binding, wire.ContractKeyValue, wire.OpKVSet,
		(&wire.KVSetRequest{Key: key, Value: value, Expires: expires}).Encode())
	return err
}

// Log writes text at level ("error", "warn", "info" or "debug") to the host's
// log, tagged with this actor (wasmcloud:builtin:logging).
func Log(level, text string) error {
	_, err := HostCall(DefaultLink, wire.ContractLogging, wire.OpLogWrite,
		(&wire.LogEntry{Level: level, Text: text}).Encode())
	return err
}

// GenerateGUID asks the host for a random UUID (wasmcloud:builtin:numbergen).
func GenerateGUID() (string, error) {
	reply, err := HostCall(DefaultLink, wire.ContractNumberGen, wire.OpNumGenGUID, nil)
	if err != nil {
		return "", err
	}
	var guid string
	err = decodeReply(wire.OpNumGenGUID, reply, func(r *wire.Reader) (err error) {
		guid, err = r.Str()
		return err
	})
	return guid, err
}

// CallActor invokes operation on another actor, named by its public key
// (M…) or its call alias, and returns the reply. Actor-to-actor calls need no
// link and no capability claim.
func CallActor(target, operation string, payload []byte) ([]byte, error) {
	return HostCall(DefaultLink, target, operation, payload)
}

// encodeStr is a bare msgpack string, the argument of the key-value
// operations that take only a key.
func encodeStr(s string) []byte {
	w := wire.NewWriter(wire.StrSize(len(s)))
	w.Str(s)
	return w.Bytes()
}

// decodeReply reads a reply that is one bare msgpack value with read.
func decodeReply(operation string, reply []byte, read func(*wire.Reader) error) error {
	r := wire.NewReader(reply)
	err := read(r)
	if err == nil {
		err = r.End()
	}
	if err != nil {
		return fmt.Errorf("decode %s reply: %w: %v", operation, wire.ErrMalformed, err)
	}
	return nil
}
