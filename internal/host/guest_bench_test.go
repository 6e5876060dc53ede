package host

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

// BenchmarkGuestCall is the guest's share of one invocation: a compiled
// instance of the Go echo actor taken from the pool, called and returned,
// with no NATS and no signature check around it. Echo.Echo is what the node
// rows of make bench call; HttpServer.HandleRequest is what the httpserver
// provider sends for the HTTP rows' GET, so the difference of the two is the
// guest time the HTTP path adds per request. cpu-ns/op is the process's CPU
// per call, steadier than ns/op on a shared machine.
func BenchmarkGuestCall(b *testing.B) {
	f := newFixture(b)
	echo := f.startActor(b, echoPkg, 1, trust.SignActorOptions{Name: "echo", Caps: []string{wire.ContractHTTPServer}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := f.h.WaitCompiled(ctx, echo.Key); err != nil {
		b.Fatal(err)
	}
	a := f.h.actor(echo.Key)
	if a == nil {
		b.Fatal("echo actor not running")
	}
	get := (&wire.HTTPRequest{Method: "GET", Path: "/bench", QueryString: "x=1",
		Header: map[string][]string{"host": {"127.0.0.1:8080"}, "user-agent": {"Go-http-client/1.1"}}}).Encode()
	for _, c := range []struct {
		name, op string
		payload  []byte
	}{
		{"Echo.Echo-256B", "Echo.Echo", make([]byte, 256)},
		{"HttpServer.HandleRequest-GET", wire.OpHTTPHandleRequest, get},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := benchCPU()
			for b.Loop() {
				out, _, release, err := f.h.invokeActor(context.Background(), a, c.op, c.payload)
				if err != nil || len(out) == 0 {
					b.Fatalf("%s: %d bytes, %v", c.op, len(out), err)
				}
				release()
			}
			b.ReportMetric(float64(benchCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// benchCPU is the user and system CPU time of this process so far.
func benchCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
