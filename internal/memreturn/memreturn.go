// Package memreturn gives memory the process stopped using back to the
// operating system promptly, and sets the Go runtime's soft memory limit from
// the container's cgroup when the operator did not set GOMEMLIMIT
// (docs/operations.md, "Memory").
//
// Why: a wasm instance's linear memory lives on the Go heap. When instances
// are scaled away nothing else allocates on an idle host, so no collection
// runs until the runtime's forced one about two minutes later, and the
// scavenger then returns the pages slowly: a node that once ran 64 instances
// kept their RSS for good, and a container sized for today's load was
// OOM-killed by yesterday's burst.
package memreturn

import (
	"context"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// Returner collects how many bytes became garbage and, once enough has, runs
// a collection that returns the memory to the operating system, at most once
// per interval. Released is cheap and never blocks; Run does the work.
type Returner struct {
	threshold uint64
	settle    time.Duration
	interval  time.Duration
	free      func()

	pending atomic.Uint64
	wake    chan struct{}
	returns atomic.Uint64
}

// Defaults for the host: a Go instance's linear memory is about 7 MiB, so a
// few instances released together trigger a return; the settle time lets a
// scale-down that closes instances one by one finish first; the interval
// bounds the collections to a small share of one core even under churn.
const (
	DefaultThreshold = 32 << 20
	DefaultSettle    = 200 * time.Millisecond
	DefaultInterval  = 2 * time.Second
)

// New returns a Returner that returns memory once threshold bytes were
// released, settle after the release that crossed it, and at most once per
// interval.
func New(threshold uint64, settle, interval time.Duration) *Returner {
	return &Returner{threshold: threshold, settle: settle, interval: interval,
		free: debug.FreeOSMemory, wake: make(chan struct{}, 1)}
}

// Released records that n bytes are no longer used (for example a closed
// instance's linear memory).
func (r *Returner) Released(n uint64) {
	if r.pending.Add(n) >= r.threshold {
		select {
		case r.wake <- struct{}{}:
		default: // a return is already due
		}
	}
}

// Returns is how many times memory was returned.
func (r *Returner) Returns() uint64 { return r.returns.Load() }

// Run returns memory when enough was released, until ctx ends. The caller
// owns the goroutine that runs it.
func (r *Returner) Run(ctx context.Context) {
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		}
		wait := max(r.settle, time.Until(last.Add(r.interval)))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		r.pending.Store(0)
		r.free()
		last = time.Now()
		r.returns.Add(1)
	}
}
