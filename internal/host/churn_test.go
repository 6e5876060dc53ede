package host

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/trust"
)

// heapAfterGC is the heap the host still holds once garbage is collected and
// returned: what a leak would grow, unlike RSS, which lags the collector.
func heapAfterGC() uint64 {
	runtime.GC()
	debug.FreeOSMemory()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// Scaling an actor up and down discards instances; each Go echo instance
// holds several MiB of linear memory once it has served calls. Memory must
// stay flat over many such cycles: the heap after a collection may not grow
// with the number of instances thrown away (issue 11: the soak's RSS rise
// was the collector's lag, not a leak; this proves it without the lag).
func TestMemoryFlatUnderInstanceChurn(t *testing.T) {
	f := newFixture(t)
	echo := f.startActor(t, echoPkg, 1, trust.SignActorOptions{Name: "echo"})
	caller, _ := trust.CreateKeyPair(lattice.KindModule)
	subject := lattice.RPCActor("test", echo.Key)
	payload := make([]byte, 4096)
	ctx := context.Background()
	const up = 4
	cycle := func(t *testing.T) {
		t.Helper()
		if err := f.h.ScaleActor(ctx, lattice.ScaleActorCommand{ActorID: echo.Key, Count: up}); err != nil {
			t.Fatal(err)
		}
		// Enough concurrent calls that every instance serves some and grows
		// its memory past its initial size.
		errs := make(chan error, up*8)
		for i := 0; i < up*8; i++ {
			go func() {
				_, err := rpc.Invoke(ctx, f.nc, f.cluster, f.h.ID(), lattice.ActorEntity(caller.PublicKey()), lattice.ActorEntity(echo.Key), subject, "Echo.Echo", payload)
				errs <- err
			}()
		}
		for i := 0; i < up*8; i++ {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if err := f.h.ScaleActor(ctx, lattice.ScaleActorCommand{ActorID: echo.Key, Count: 1}); err != nil {
			t.Fatal(err)
		}
	}
	// A cold start serves interpreted code until the compiler is done; the
	// compile's own memory is not what this test measures.
	a := actorOf(f.h, echo.Key)
	testenv.CheckFor(t, 2*time.Minute, 50*time.Millisecond, func() error {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.code.interpreted {
			return errors.New("still interpreted")
		}
		return nil
	})
	const warm, measured = 5, 40
	for i := 0; i < warm; i++ {
		cycle(t)
	}
	before, goroutines := heapAfterGC(), runtime.NumGoroutine()
	for i := 0; i < measured; i++ {
		cycle(t)
	}
	after := heapAfterGC()
	discarded := measured * (up - 1)
	t.Logf("heap after GC: %.1f MiB before, %.1f MiB after %d more cycles (%d instances discarded); goroutines %d -> %d",
		float64(before)/(1<<20), float64(after)/(1<<20), measured, discarded, goroutines, runtime.NumGoroutine())
	// One Go echo instance holds at least 4 MiB of linear memory, so keeping
	// even a tenth of the discarded instances would exceed this bound by far.
	const bound = 16 << 20
	if after > before && after-before > bound {
		t.Fatalf("heap grew by %.1f MiB over %d discarded instances: instances are not released", float64(after-before)/(1<<20), discarded)
	}
	// Serving goroutines wait up to 5 s for their next invocation
	// (workers.go), so the count is taken once those of the last cycle are
	// gone, not at an instant that may still hold them.
	testenv.CheckFor(t, 15*time.Second, 100*time.Millisecond, func() error {
		if n := runtime.NumGoroutine(); n > goroutines+5 {
			return fmt.Errorf("goroutines grew from %d to %d over the churn", goroutines, n)
		}
		return nil
	})
}
