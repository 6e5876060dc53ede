// Package actor is the guest-side SDK for latticed (and wasmCloud 0.x) actors
// written in plain Go.
//
// An actor is a package main built as a WASI reactor (Go 1.24 or later: the
// first with //go:wasmexport and -buildmode=c-shared for wasip1, which is why
// this module's go line says 1.24):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o echo.wasm ./examples/echo
//
// Register handlers from init, not from main: in -buildmode=c-shared the host's
// call to the module's _initialize export runs the Go runtime and every package
// init function, but main.main is never run. An actor's main is therefore
// empty:
//
//	func init() {
//		actor.Handle("Echo.Echo", func(p []byte) ([]byte, error) { return p, nil })
//	}
//
//	func main() {}
//
// The package implements the wasmbus ABI (docs/protocol.md §5): it exports
// __guest_call and __wasmbus_rpc_version, imports the host functions from the
// wasm module "wasmbus", and turns each __guest_call into a call of the handler
// registered for the operation. A handler's error, an unknown operation and a
// handler panic all become guest errors, so one bad invocation never kills a
// pooled instance.
//
// Outbound calls (HostCall and the typed helpers KVIncrement, KVGet, KVSet,
// Log, GenerateGUID, CallActor) block until the host answers. An instance
// serves one invocation at a time; it is not re-entrant.
//
// Payloads are msgpack. The SDK is a module of its own whose only dependency
// is github.com/latticed/latticed/wire, the standard-library-only module that
// holds the msgpack Reader and Writer and the contract payload types
// (wire.HTTPRequest, wire.KVGetResponse, …) with their codecs; an actor
// encodes and decodes its own payloads with it.
//
// Outside a wasip1 build the package still compiles so that the dispatch and
// encoding logic can be tested on a developer machine; host calls there fail
// with ErrNotInActor.
package actor
