package host

import (
	"context"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/testing/cpubench"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/trust"
)

// benchEcho starts the echo actor on f's host, waits until it runs compiled
// code (a cold start begins interpreted, and the compile would burn CPU
// during the measurement), and returns one signed Echo.Echo call of 256
// bytes through NATS.
func benchEcho(b *testing.B, f *fixture) func() error {
	b.Helper()
	echo := f.startActor(b, echoPkg, 2, trust.SignActorOptions{Name: "echo"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := f.h.WaitCompiled(ctx, echo.Key); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 256)
	caller, _ := trust.CreateKeyPair(lattice.KindModule)
	subject := lattice.RPCActor("test", echo.Key)
	return func() error {
		_, err := rpc.Invoke(context.Background(), f.nc, f.cluster, f.h.ID(), lattice.ActorEntity(caller.PublicKey()), lattice.ActorEntity(echo.Key), subject, "Echo.Echo", payload)
		return err
	}
}

// BenchmarkInvokeEcho is the full path in one process: sign, NATS, issuer
// policy, wasm echo, reply, decode. make bench compares it with its floors.
func BenchmarkInvokeEcho(b *testing.B) {
	call := benchEcho(b, newFixture(b))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpubench.Process()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := call(); err != nil {
				b.Fatal(err)
			}
		}
	})
	reportCPUPerOp(b, cpu)
}

// reportCPUPerOp adds the CPU this process spent per operation since
// start (client, NATS server and host all run in it): steadier than ns/op
// when other work shares the machine.
func reportCPUPerOp(b *testing.B, start time.Duration) {
	b.Helper()
	b.ReportMetric(float64((cpubench.Process()-start).Microseconds())/float64(b.N), "cpu-µs/op")
}
