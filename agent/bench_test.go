package agent

import (
	"context"
	"testing"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
)

// BenchmarkInvokeEcho is the full path in one process: sign, NATS, issuer
// policy, wasm echo, reply, decode. make bench compares it with its floors.
func BenchmarkInvokeEcho(b *testing.B) {
	f := newFixture(b)
	echo := f.startActor(b, echoPkg, 2, lattice.SignActorOptions{Name: "echo"})
	payload := make([]byte, 256)
	caller, _ := lattice.CreateKeyPair(lattice.KindModule)
	subject := lattice.RPCActor("test", echo.Key)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := rpc.Invoke(ctx, f.nc, f.cluster, f.h.ID(), lattice.ActorEntity(caller.PublicKey()), lattice.ActorEntity(echo.Key), subject, "Echo.Echo", payload); err != nil {
				b.Fatal(err)
			}
		}
	})
}
