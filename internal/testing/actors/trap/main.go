// Command trap is a hostile actor with three ways to fail, which a host must
// tell apart:
//
//   - Trap.Panic panics inside the handler. The SDK recovers it and returns a
//     guest error ("panic in handler for Trap.Panic: boom"); the instance
//     stays usable.
//   - Trap.Exit calls os.Exit(3), i.e. WASI proc_exit(3): the module is gone
//     (wazero reports a sys.ExitError with code 3) and the instance must be
//     discarded.
//   - Trap.Fault reads far beyond linear memory, a genuine wasm trap ("out of
//     bounds memory access"). The Go runtime is left mid-call, so the host
//     must discard the instance.
//
// Any Go fatal error (an unrecovered panic in another goroutine, as
// Trap.GoroutinePanic does, out of
// memory, stack exhaustion) also ends in a trap, not exit(2): a c-shared
// runtime aborts, which on wasm is "unreachable", with the reason on stderr.
package main

import (
	"os"
	"unsafe"

	"github.com/latticed/latticed/actor"
)

var anchor byte

func init() {
	actor.Handle("Trap.Panic", func([]byte) ([]byte, error) {
		panic("boom")
	})
	actor.Handle("Trap.Exit", func([]byte) ([]byte, error) {
		os.Exit(3)
		return nil, nil
	})
	actor.Handle("Trap.Fault", func([]byte) ([]byte, error) {
		// Go checks pointers only for nil, not against the memory size, so a
		// load 3 GiB past a real variable reaches the engine's bounds check.
		p := (*byte)(unsafe.Add(unsafe.Pointer(&anchor), 3<<30))
		return []byte{*p}, nil
	})
	actor.Handle("Trap.GoroutinePanic", func([]byte) ([]byte, error) {
		// Out of the SDK's reach: the panic is on another goroutine.
		done := make(chan struct{})
		go func() {
			defer close(done)
			panic("boom in a goroutine")
		}()
		<-done
		return nil, nil
	})
	actor.Handle("Echo.Echo", func(p []byte) ([]byte, error) { return p, nil })
}

func main() {}
