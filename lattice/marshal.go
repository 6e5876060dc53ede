package lattice

import (
	"bytes"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/latticed/latticed/wire"
)

// Marshal and Unmarshal are the reflection codec, for the messages of any
// shape (link definitions, health checks, control payloads, contract
// arguments in tests). The messages on every call's path are written and
// read by hand on wire.Writer and wire.Reader instead (the Invocation's
// codec in invocation.go, wire's payload codecs, the key-value results).

// Marshal encodes v as msgpack with structs as maps keyed by field name, the
// encoding every wasmCloud peer uses.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Unmarshal decodes msgpack into v.
func Unmarshal(data []byte, v any) error {
	if err := msgpack.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %v", wire.ErrMalformed, err)
	}
	return nil
}
