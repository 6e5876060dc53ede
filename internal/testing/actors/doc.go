// Package actors holds hostile and diagnostic actors that the product's
// tests build (GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared) and run
// to prove isolation, limits and routing. None of them is meant to be
// deployed; the actors an author would copy are the SDK's examples
// (actor/examples).
//
// The package's test is also the actor SDK's end-to-end test over the wasmbus
// ABI (real actors in wazero behind a minimal host). It lives here, in the
// root module, because it needs wazero, and the SDK's own module depends on
// the standard library and wire only.
//
//   - loop: Loop.Forever never returns (timeouts); Echo.Echo.
//   - trap: Trap.Panic (a handler panic: the SDK turns it into a guest error
//     and the instance stays usable), Trap.Exit (os.Exit(3): proc_exit, the
//     instance is dead), Trap.Fault (a real wasm trap: out-of-bounds memory
//     access), Trap.GoroutinePanic (a panic the SDK cannot recover: a trap);
//     Echo.Echo.
//   - membomb: Mem.Grow allocates 64 MiB chunks until memory runs out;
//     Mem.GrowOnce keeps one more 64 MiB chunk per call and returns the count.
//   - recurse: Recurse.Deep recurses until the goroutine stack overflows.
//   - hostcall: Call.Forward performs the host call described by its payload;
//     Call.Answer too, and answers a failed one with the host's error text.
//   - lifecycle: Life.MainRan, Life.Count, Life.Sleep, Life.Goroutine report
//     how the Go reactor behaves (main not run, state kept across calls).
//   - startforever: its initialiser sleeps forever, so its start never
//     finishes (start deadline).
//   - anyop: answers every operation, whatever its name, with that name
//     (the worst case for the operation label of the host's metrics).
//   - logger: Gen.Guid logs through wasmcloud:builtin:logging and returns a
//     GUID from wasmcloud:builtin:numbergen; Log.Write logs its payload.
//   - passthrough: answers every HTTP request with its body, byte for byte
//     (large-payload round trips and the payload benchmark).
//   - guestcost: the SDK's Echo.Echo and HttpServer.HandleRequest, and one
//     export per step of a call (entry, allocations, __guest_request, lookup,
//     HTTP decode, encode, __guest_response), which BenchmarkGuestSteps in
//     internal/wasmstop times to split a Go guest's per-call cost.
//   - rustecho: lib.rs, a wasmbus actor for wasm32-unknown-unknown that
//     internal/host's Rust ABI test compiles with rustc.
package actors
