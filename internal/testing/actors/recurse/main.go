// Command recurse is a hostile actor whose Recurse.Deep recurses without end.
// Go doubles the goroutine stack in linear memory until the host's memory
// limit (or Go's 1 GB stack limit) stops it, then prints a fatal error to
// stderr and aborts: a wasm "unreachable" trap.
package main

import "github.com/latticed/latticed/actor"

// deep keeps a frame's worth of live data so neither inlining nor tail calls
// can flatten the recursion.
//
//go:noinline
func deep(n int) int {
	var pad [256]byte
	pad[n%len(pad)] = byte(n)
	return deep(n+1) + int(pad[(n*7)%len(pad)])
}

func init() {
	actor.Handle("Recurse.Deep", func([]byte) ([]byte, error) {
		return []byte{byte(deep(0))}, nil
	})
}

func main() {}
