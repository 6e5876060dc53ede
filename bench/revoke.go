package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/latticed/latticed/internal/supervisor"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/trust"
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
	caller, _ := trust.CreateKeyPair(lattice.KindModule)
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

// revocationCheckpoint is one point of the revocation curve.
type revocationCheckpoint struct {
	prior          int           // revocations made before the sample
	p50, p99       time.Duration // of the sample
	peak           int           // the most entries the list held while the prior ones were made
	entries, bytes int           // the account's revocation list and JWT after the sample
	heapMiB        float64       // this process's Go heap in use after a GC
}

// revocationCurve revokes random user keys through an Authority of the
// embedded operator-mode server (supervisor.StartOperatorNATS): sign the
// account with one more revocation, apply it, return when the server took
// it. At each checkpoint it times the next `sample` revocations. lifetime
// 0 is the behaviour before pruning (no expiry, nothing ever removed);
// otherwise entries go once lifetime plus the pruning margin has passed,
// and the sample starts once the users revoked before it have expired (so
// it measures what the history costs, not how many revocations the last
// lifetime made).
func revocationCurve(tmp string, lifetime time.Duration, checkpoints []int, sample int) ([]revocationCheckpoint, error) {
	dir, err := os.MkdirTemp(tmp, "revoke")
	if err != nil {
		return nil, err
	}
	keys, err := supervisor.LoadOperatorKeys(dir)
	if err != nil {
		return nil, err
	}
	s, a, err := supervisor.StartOperatorNATS(supervisor.EmbeddedNATS{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "js"),
		MaxPayload: 1 << 20, ProviderCredsLifetime: lifetime}, keys, supervisor.Scope{LatticePrefix: "bench"})
	if err != nil {
		return nil, err
	}
	defer s.Shutdown()
	ctx := context.Background()
	revoke := func() (time.Duration, error) {
		u, err := nkeys.CreateUser()
		if err != nil {
			return 0, err
		}
		pub, _ := u.PublicKey()
		t0 := time.Now()
		err = a.Revoke(ctx, pub)
		return time.Since(t0), err
	}
	count := func() int { n, _, _ := a.RevocationCount(); return n }
	var out []revocationCheckpoint
	done := 0
	for _, cp := range checkpoints {
		peak := count()
		for ; done < cp; done++ {
			if _, err := revoke(); err != nil {
				return out, fmt.Errorf("revocation %d: %w", done+1, err)
			}
			if done%500 == 0 {
				peak = max(peak, count())
			}
		}
		peak = max(peak, count())
		if lifetime > 0 && cp > 0 {
			time.Sleep(lifetime + 2*time.Second + 100*time.Millisecond) // + the embedded pruning margin
		}
		lat := make([]time.Duration, 0, sample)
		for i := 0; i < sample; i++ {
			d, err := revoke()
			if err != nil {
				return out, fmt.Errorf("revocation %d: %w", done+1, err)
			}
			lat = append(lat, d)
			done++
		}
		n, size, err := a.RevocationCount()
		if err != nil {
			return out, err
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		out = append(out, revocationCheckpoint{prior: cp, p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), peak: peak, entries: n, bytes: size,
			heapMiB: float64(ms.HeapInuse) / (1 << 20)})
		progress("revocation curve (lifetime %s): %d prior, p50 %s, peak %d entries, %d entries, %d bytes after", lifetime, cp, quantile(lat, 0.5), peak, n, size)
	}
	return out, nil
}

// benchRevocationCurve adds the rows of issue 24 item 2: revocation latency
// against the revocations made before it, without pruning (users that never
// expire: the behaviour before) and with it (users living 1 s, revoked as
// fast as the machine can), each against the latency with none before it in
// the same run; the account JWT and this process's memory alongside.
func benchRevocationCurve(tmp string, o options, rep *Report) error {
	const sample = 200
	withPrune, without := []int{0, 1000, 10000, 100000}, []int{0, 1000, 5000}
	if o.revocations < 100 { // -quick
		withPrune, without = []int{0, 1000, 10000}, []int{0, 1000}
	}
	add := func(label string, pts []revocationCheckpoint) {
		floor := ms(pts[0].p50)
		for _, p := range pts {
			r := Row{Name: fmt.Sprintf("revocation curve %s: p50 after %d revocations", label, p.prior), Value: ms(p.p50), Unit: "ms"}
			if p.prior > 0 {
				r.Ratio, r.RatioTo = ms(p.p50)/floor, "after 0"
			}
			rep.Rows = append(rep.Rows, r,
				Row{Name: fmt.Sprintf("revocation curve %s: p99 after %d revocations", label, p.prior), Value: ms(p.p99), Unit: "ms"},
				Row{Name: fmt.Sprintf("revocation curve %s: most list entries while making %d", label, p.prior), Value: float64(p.peak), Unit: "entries"},
				Row{Name: fmt.Sprintf("revocation curve %s: list entries after %d + %d", label, p.prior, sample), Value: float64(p.entries), Unit: "entries"},
				Row{Name: fmt.Sprintf("revocation curve %s: account JWT after %d + %d", label, p.prior, sample), Value: float64(p.bytes) / 1024, Unit: "KiB"},
				Row{Name: fmt.Sprintf("revocation curve %s: Go heap in use after %d", label, p.prior), Value: p.heapMiB, Unit: "MiB"})
		}
	}
	progress("revocation curve without pruning (users never expire): %v", without)
	pts, err := revocationCurve(tmp, 0, without, sample)
	if err != nil {
		return err
	}
	add("no expiry", pts)
	progress("revocation curve with pruning (users live 1s): %v", withPrune)
	if pts, err = revocationCurve(tmp, time.Second, withPrune, sample); err != nil {
		return err
	}
	add("1s users", pts)
	return nil
}

// runRevocationCurve is -only revocations.
func runRevocationCurve(o options) error {
	return onlySection(o, func(tmp string, rep *Report) error { return benchRevocationCurve(tmp, o, rep) })
}
