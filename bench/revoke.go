package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
)

// benchRevocation launches builtin:keyvalue under a fresh link name, waits
// until it runs, and revokes it (Supervisor.Revoke: from the request to the
// provider's NATS connection observed closed), rounds times, while a client
// keeps invoking the echo actor on the same host. Every invocation error
// during the run is counted.
func benchRevocation(n *node, actorKey string, rounds int, rep *Report) error {
	ctx := context.Background()
	const ref = "builtin:keyvalue"
	var calls, errs atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	caller, _ := lattice.CreateKeyPair(lattice.KindModule)
	subject := lattice.RPCActor(n.cfg.LatticePrefix, actorKey)
	payload := make([]byte, payloadSize)
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				out, err := rpc.Invoke(cctx, n.nc, n.cluster, n.sup.HostID(), lattice.ActorEntity(caller.PublicKey()), lattice.ActorEntity(actorKey), subject, "Echo.Echo", payload)
				cancel()
				if err == nil && len(out) != len(payload) {
					err = fmt.Errorf("bad reply")
				}
				calls.Add(1)
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	lat := make([]time.Duration, 0, rounds)
	var err error
	for i := 0; i < rounds && err == nil; i++ {
		link := fmt.Sprintf("rev%d", i)
		if err = n.sup.LaunchProvider(ctx, lattice.LaunchProviderCommand{ProviderRef: ref, LinkName: link}); err != nil {
			break
		}
		if err = n.waitProvider(ref, link, "running", 30*time.Second); err != nil {
			break
		}
		r, rerr := n.sup.Revoke(ctx, lattice.StopProviderCommand{ProviderRef: ref, LinkName: link})
		if rerr != nil {
			err = rerr
			break
		}
		lat = append(lat, time.Duration(r.Seconds*float64(time.Second)))
	}
	close(stop)
	wg.Wait()
	if err != nil {
		return fmt.Errorf("revocation %d: %w", len(lat), err)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	rep.Rows = append(rep.Rows,
		Row{Name: fmt.Sprintf("revocation p50 (%d revocations, request -> connection closed)", len(lat)), Value: ms(quantile(lat, 0.5)), Unit: "ms"},
		Row{Name: fmt.Sprintf("revocation p99 (%d revocations, request -> connection closed)", len(lat)), Value: ms(quantile(lat, 0.99)), Unit: "ms"},
		Row{Name: "revocation: echo invocations on the same host meanwhile", Value: float64(calls.Load()), Unit: "calls"},
		Row{Name: "revocation: host invocation errors meanwhile (must be 0)", Value: float64(errs.Load()), Unit: "errors"})
	if e := errs.Load(); e > 0 {
		// Reported, not fatal: the table still shows every other figure.
		fmt.Fprintf(os.Stderr, "bench: WARNING: %d invocation errors during revocations (first: %v)\n", e, firstErr.Load())
	}
	return nil
}
