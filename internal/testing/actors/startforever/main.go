// Command startforever is a hostile actor whose start never finishes: its
// package initialiser, run by the Go reactor's _initialize, sleeps forever,
// so the host's start deadline is all that ends it. Sleeping (a WASI
// poll_oneoff clock wait) rather than spinning makes it the harder case: a
// spinning guest is stopped by wazero's context check, a sleeping one only
// if the host's sleep observes the context. Echo.Echo is never reached.
package main

import (
	"time"

	"github.com/latticed/latticed/actor"
)

func init() {
	for {
		time.Sleep(time.Hour)
	}
}

func main() {
	actor.Handle("Echo.Echo", func(p []byte) ([]byte, error) { return p, nil })
}
