package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/host"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// scaleConc is the client concurrency of the scaling rows.
const scaleConc = 16

// benchScaling starts the echo module signed with N distinct module keys
// (N distinct actors, one instance each, on the in-process host) and
// round-robins latticed-path calls across them at concurrency 16. Actors
// accumulate: the 100-actor cell runs the 10 of the previous one plus 90.
// Each distinct signature is a distinct module to the compiler, so every
// new actor pays a cold compile (not timed).
func benchScaling(ctx context.Context, h *host.Host, nc *nats.Conn, cluster *trust.KeyPair, tmp string, unsigned []byte, acct *trust.KeyPair, o options, rep *Report) error {
	var keys []string
	var first cell
	payload := make([]byte, payloadSize)
	for _, n := range o.scale {
		for len(keys) < n {
			mod, _ := trust.CreateKeyPair(lattice.KindModule)
			signed, _, err := trust.SignActor(unsigned, trust.SignActorOptions{Name: fmt.Sprintf("echo%d", len(keys))}, acct, mod)
			if err != nil {
				return err
			}
			path := filepath.Join(tmp, fmt.Sprintf("scale-%d.wasm", len(keys)))
			if err := os.WriteFile(path, signed, 0o644); err != nil {
				return err
			}
			if _, err := h.StartActor(ctx, "file://"+path, 1, nil); err != nil {
				return fmt.Errorf("scaling: start actor %d: %w", len(keys), err)
			}
			// One compile at a time, and none during the measurement.
			if err := h.WaitCompiled(ctx, mod.PublicKey()); err != nil {
				return fmt.Errorf("scaling: actor %d: %w", len(keys), err)
			}
			keys = append(keys, mod.PublicKey())
		}
		calls := make([]func([]byte) error, n)
		for i, k := range keys[:n] {
			calls[i] = latticedPath(nc, cluster, h.ID(), k)
		}
		var next atomic.Uint64
		rr := func(p []byte) error { return calls[next.Add(1)%uint64(n)](p) }
		got, errs := measureCell(rr, payload, scaleConc, o.dur, processCPU)
		if errs > 0 {
			return fmt.Errorf("scaling over %d actors: %d errors", n, errs)
		}
		name := fmt.Sprintf("scaling c=%d: %d distinct actors x1 instance, round-robin", scaleConc, n)
		row := Row{Name: name, Value: got.rps, Unit: "req/s"}
		cpuRow := Row{Name: "CPU per call " + name, Value: got.cpuPerCall, Unit: "µs"}
		if first.rps == 0 {
			first = got
		} else {
			row.Ratio, row.RatioTo = got.rps/first.rps, fmt.Sprintf("%d actor(s)", o.scale[0])
			cpuRow.Ratio, cpuRow.RatioTo = got.cpuPerCall/first.cpuPerCall, row.RatioTo
		}
		rep.Rows = append(rep.Rows, row, cpuRow)
	}
	return nil
}
