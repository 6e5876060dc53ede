// Package testhost runs a real wasm host (host.Host) inside a test, for the
// packages that drive a host from outside (ctl, providers). Package host's
// own tests have their own fixture, since they cannot import this one.
package testhost

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/host"
)

// Start creates a host from opts, runs it until it is ready and returns it
// with a stop function (idempotent) that also runs when the test ends.
func Start(t testing.TB, opts host.Options) (*host.Host, func()) {
	t.Helper()
	if opts.StartTimeout == 0 {
		// Under -race wazero runs about twenty times slower, and an
		// interpreted Go actor's initialiser takes longer than the
		// production start deadline; tests that test that deadline set it.
		opts.StartTimeout = 2 * time.Minute
	}
	ctx, cancel := context.WithCancel(context.Background())
	h, err := host.New(ctx, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	select {
	case <-h.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("host exited before it was ready: %v", err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("host run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("host did not stop within 30s")
			}
		})
	}
	t.Cleanup(stop)
	return h, stop
}
