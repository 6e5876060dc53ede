// Command loop is a hostile actor whose Loop.Forever never returns, to prove
// that a host's per-call timeout interrupts a spinning guest. Echo.Echo lets
// a test check that fresh instances of the same module still work.
package main

import "github.com/latticed/latticed/actor"

// sink keeps the loop from being optimised into something the host could
// tell apart from real work.
var sink uint64

func init() {
	actor.Handle("Loop.Forever", func([]byte) ([]byte, error) {
		for i := uint64(0); ; i++ {
			sink += i
		}
	})
	actor.Handle("Echo.Echo", func(p []byte) ([]byte, error) { return p, nil })
}

func main() {}
