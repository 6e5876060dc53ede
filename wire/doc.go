// Package wire is the msgpack codec and the capability-contract payloads
// that actors, providers and hosts exchange on a latticed lattice
// (docs/protocol.md §8, §9): the contract ids and operation names, the
// request and response types of wasmcloud:httpserver, wasmcloud:keyvalue,
// the logging and numbergen built-ins, and the Reader and Writer that
// decode and encode them by hand.
//
// It is a module of its own that needs only the standard library, so that
// an actor built for wasm and a provider binary can share these types with
// the host without taking in its dependencies.
//
// Decoders built on Reader take untrusted bytes: every length is checked
// before it is used, nesting is bounded by MaxDepth, and every failure wraps
// ErrMalformed.
package wire
