package host

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/trust"
)

// An actor that calls itself is stopped by the call deadline, not by the
// host running out of anything, and the actor serves again afterwards.
func TestSelfCallingActorIsStoppedByItsDeadline(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.RPCTimeout = 500 * time.Millisecond })
	fwd := f.startActor(t, hostcallPkg, 2, trust.SignActorOptions{Name: "self"})
	inner, _ := lattice.Marshal(forward{Namespace: fwd.Key, Operation: "Echo.Nope"})
	start := time.Now()
	_, err := f.forward(t, fwd.Key, forward{Namespace: fwd.Key, Operation: "Call.Forward", Payload: inner})
	if err == nil {
		t.Fatal("self call chain succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("self call took %s", d)
	}
	// A call to itself that recurses without end hits the deadline too.
	loop := forward{Namespace: fwd.Key, Operation: "Call.Forward"}
	b, _ := lattice.Marshal(loop)
	loop.Payload = b
	_, err = f.forward(t, fwd.Key, loop)
	if err == nil {
		t.Fatal("unbounded self recursion succeeded")
	}
	testenv.CheckFor(t, 5*time.Second, 50*time.Millisecond, func() error {
		_, err := f.forward(t, fwd.Key, forward{Namespace: fwd.Key, Operation: "Call.Unknown"})
		if err != nil && strings.Contains(err.Error(), "unsupported operation") {
			return nil // the chain ran and reached the actor: it serves again
		}
		return err
	})
}

// A NATS outage of ten seconds: invocations during it fail within their
// timeout, the host serves again afterwards, and it leaks no goroutines.
func TestTenSecondNATSOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: outage test takes over ten seconds")
	}
	srv := testenv.ExternalNATS(t)
	f := newFixtureAt(t, srv.URL, func(o *Options) { o.RPCTimeout = time.Second })
	echo := f.startActor(t, echoPkg, 2, trust.SignActorOptions{Name: "echo"})
	mustEcho(t, f, echo.Key)
	baseline := runtime.NumGoroutine()

	srv.Stop()
	outageEnd := time.Now().Add(10 * time.Second)
	failures := 0
	for time.Now().Before(outageEnd) {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		caller, _ := trust.CreateKeyPair(lattice.KindModule)
		_, err := rpc.Invoke(ctx, f.nc, f.cluster, f.h.ID(), lattice.ActorEntity(caller.PublicKey()), lattice.ActorEntity(echo.Key),
			lattice.RPCActor("test", echo.Key), "Echo.Echo", []byte("x"))
		cancel()
		if err == nil {
			t.Fatal("invocation succeeded with NATS down")
		}
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Fatalf("invocation hung %s during the outage", d)
		}
		failures++
		time.Sleep(200 * time.Millisecond) // pace the load; not synchronisation
	}
	srv.Start()
	testenv.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		_, err := f.call(t, echo.Key, "Echo.Echo", []byte("back"))
		return err
	})
	for i := 0; i < 50; i++ {
		mustEcho(t, f, echo.Key)
	}
	testenv.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		if n := runtime.NumGoroutine(); n > baseline+5 {
			return fmt.Errorf("goroutines grew from %d to %d", baseline, n)
		}
		return nil
	})
	t.Logf("%d invocations failed cleanly during the outage", failures)
}
