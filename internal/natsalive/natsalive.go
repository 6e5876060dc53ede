// Package natsalive keeps NATS connections honest about their server: the
// keepalive options every latticed connection is made with, and a Watcher
// that probes each connection and tells readiness when one has not heard
// from its server within the keepalive bound. nats.go itself only notices a
// silent server when PINGs go unanswered, and has no "last PONG" accessor,
// so the Watcher measures it with its own round trips (FlushTimeout sends a
// PING and waits for the PONG). docs/operations.md ("When NATS fails")
// describes what an operator sees.
package natsalive

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/config"
)

// Options are the nats.go options of keepalive k: a PING every k.Interval,
// and the connection given up (and another server of the list tried) after
// k.Misses unanswered PINGs.
func Options(k config.Keepalive) []nats.Option {
	if k.Interval <= 0 || k.Misses < 1 {
		k = config.DefaultKeepalive
	}
	return []nats.Option{nats.PingInterval(k.Interval), nats.MaxPingsOutstanding(k.Misses)}
}

// Watcher probes connections and reports the first that is unhealthy.
type Watcher struct {
	k     config.Keepalive
	mu    sync.Mutex
	conns []*watched
	added chan struct{} // wakes Run to start probing a new connection
}

type watched struct {
	name string
	nc   *nats.Conn
	last atomic.Int64 // unix nanoseconds of the last answer from the server
}

// New returns a Watcher for keepalive k.
func New(k config.Keepalive) *Watcher {
	if k.Interval <= 0 || k.Misses < 1 {
		k = config.DefaultKeepalive
	}
	return &Watcher{k: k, added: make(chan struct{}, 1)}
}

// Add watches nc under name (rpc, ctl, supervisor, …), which Check's
// reason names. A connection counts as heard from when added.
func (w *Watcher) Add(name string, nc *nats.Conn) {
	c := &watched{name: name, nc: nc}
	c.last.Store(time.Now().UnixNano())
	w.mu.Lock()
	w.conns = append(w.conns, c)
	w.mu.Unlock()
	select {
	case w.added <- struct{}{}:
	default:
	}
}

// Run probes every watched connection each keepalive interval until ctx
// ends, one goroutine per connection (a probe of a frozen server blocks for
// up to the keepalive bound), and returns once they all stopped.
func (w *Watcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	started := 0
	for {
		w.mu.Lock()
		fresh := w.conns[started:]
		started = len(w.conns)
		w.mu.Unlock()
		for _, c := range fresh {
			wg.Add(1)
			go func() { defer wg.Done(); w.probe(ctx, c) }()
		}
		select {
		case <-ctx.Done():
			return
		case <-w.added:
		}
	}
}

// probe does a round trip on c every interval while it is connected.
func (w *Watcher) probe(ctx context.Context, c *watched) {
	t := time.NewTicker(w.k.Interval)
	defer t.Stop()
	for {
		if c.nc.IsConnected() {
			if err := c.nc.FlushTimeout(w.k.Bound()); err == nil {
				c.last.Store(time.Now().UnixNano())
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check returns nil when every connection is connected and has heard from
// its server within the keepalive bound, else why not, naming the
// connection.
func (w *Watcher) Check() error {
	w.mu.Lock()
	conns := append([]*watched(nil), w.conns...)
	w.mu.Unlock()
	for _, c := range conns {
		if !c.nc.IsConnected() {
			if err := c.nc.LastError(); err != nil {
				return fmt.Errorf("NATS %s connection is %s (last error: %v)", c.name, c.nc.Status(), err)
			}
			return fmt.Errorf("NATS %s connection is %s", c.name, c.nc.Status())
		}
		if since := time.Since(time.Unix(0, c.last.Load())); since > w.k.Bound() {
			return fmt.Errorf("NATS %s connection has not heard from its server %s for %s (keepalive bound %s; %s, %s)",
				c.name, c.nc.ConnectedUrlRedacted(), since.Round(100*time.Millisecond), w.k.Bound(),
				config.EnvNATSPingInterval, config.EnvNATSPingMisses)
		}
	}
	return nil
}

// WaitConnected waits until every connection is connected, logging every
// few seconds which one is still waiting and why, so a process whose
// servers are all down keeps trying (nats.RetryOnFailedConnect) instead of
// exiting. It returns ctx's error if ctx ends first.
func WaitConnected(ctx context.Context, log *slog.Logger, conns map[string]*nats.Conn) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	start, lastLog := time.Now(), time.Now()
	for {
		waiting := ""
		var lastErr error
		for name, nc := range conns {
			if !nc.IsConnected() {
				waiting, lastErr = name, nc.LastError()
				break
			}
		}
		if waiting == "" {
			return nil
		}
		if time.Since(lastLog) >= 5*time.Second {
			lastLog = time.Now()
			log.Warn("waiting for a NATS server of the list to answer; not ready until one does",
				"conn", waiting, "waited", time.Since(start).Round(time.Second).String(), "err", lastErr)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("NATS %s connection: no server answered before the process was stopped: %w", waiting, ctx.Err())
		case <-t.C:
		}
	}
}
