package actor

import "github.com/vmihailenco/msgpack/v5"

// Marshal encodes v as msgpack the way wasmbus-rpc expects: structs become
// maps keyed by their `msgpack` tags (the lattice contract types carry
// camelCase tags), a bare string or integer stays a bare value.
func Marshal(v any) ([]byte, error) {
	return msgpack.Marshal(v)
}

// Unmarshal decodes msgpack data into v. Integers of any msgpack width decode
// into any Go integer type they fit, so replies from Rust and Go providers
// both work.
func Unmarshal(data []byte, v any) error {
	return msgpack.Unmarshal(data, v)
}
