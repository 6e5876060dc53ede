// Package lattice holds the wire types every process of a lattice speaks
// (docs/protocol.md), as plain types and functions that hold no connection
// and start no goroutine: invocations and their responses with their
// hand-written codecs (invocation.go, msgpackenc.go, on package wire's
// Reader and Writer), the reflection codec for messages of any other shape
// (marshal.go), NATS subjects and cache keys (subjects.go), HostData
// (hostdata.go), link definitions (linkdef.go), control-interface bodies
// (ctl.go), events (events.go), trace context (tracecontext.go), the reasons
// an invocation is refused (reject.go), the text form of keys (keys.go) and
// the rules for control input (validate.go).
//
// It is separate from package wire, which holds the codec and the
// capability-contract payloads an actor needs, so that actors do not compile
// in what only hosts and providers exchange; and from package trust, which
// signs and decides whom to believe and keeps state to do so. It imports
// only wire, so the host, the supervisor, the SDKs and the control client
// can all depend on it without depending on each other
// (docs/architecture.md, "Dependency rules"). Decoders accept what
// wasmCloud's hosts and providers send and refuse the rest with an error,
// never a panic: they are fuzzed.
package lattice
