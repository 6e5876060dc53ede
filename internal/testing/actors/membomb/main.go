// Command membomb is a hostile actor that exhausts memory, to prove that a
// host's memory limit holds. Go's runtime grows linear memory with
// memory.grow; when the host refuses, the runtime prints "fatal error: out of
// memory" to stderr and aborts: a wasm "unreachable" trap.
package main

import (
	"strconv"

	"github.com/latticed/latticed/actor"
)

const chunk = 64 << 20

// hoard keeps every chunk reachable so the collector cannot free them.
var hoard [][]byte

func grab() {
	b := make([]byte, chunk)
	// Touch every page so the memory is really used, not just reserved.
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	hoard = append(hoard, b)
}

func init() {
	actor.Handle("Mem.Grow", func([]byte) ([]byte, error) {
		for {
			grab()
		}
	})
	actor.Handle("Mem.GrowOnce", func([]byte) ([]byte, error) {
		grab()
		return []byte(strconv.Itoa(len(hoard))), nil
	})
}

func main() {}
