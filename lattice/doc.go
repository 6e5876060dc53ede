// Package lattice is the wire protocol latticed speaks with every other
// process in a lattice (docs/protocol.md), as plain types and functions that
// hold no connection and start no goroutine:
//
//   - encodings: the msgpack codec (msgpack.go, msgpackenc.go), invocations
//     and their responses (invocation.go), the HttpServer contract's request
//     and response (httpcodec.go), HostData (hostdata.go), link definitions
//     (linkdef.go), control-interface bodies (ctl.go), events (events.go),
//     trace context (tracecontext.go);
//   - names: NATS subjects and cache keys (subjects.go), contract ids and
//     operations (contracts.go), the built-in providers (builtin.go);
//   - identity: nkeys (keys.go, filekey.go), JWTs and wascap claims (jwt.go,
//     jwtfast.go, claims.go, providerclaims.go) and the claims section of a
//     wasm module (wasm.go);
//   - the checks every receiver makes: the issuer policy an invocation must
//     pass (policy.go), with its replay guard (replay.go) and provider
//     delegations (delegation.go), and the rules for control input
//     (validate.go).
//
// It is separate because every side of the wire imports it — the wasm host,
// the supervisor, the provider SDK, the control client and the actor SDK —
// and it imports no other package of this repository, so each of them can
// depend on it without depending on the others (docs/architecture.md,
// "Dependency rules"). Decoders accept what wasmCloud's hosts and providers
// send and refuse the rest with an error, never a panic: they are fuzzed.
package lattice
