package host

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/testing/cpubench"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// BenchmarkServeEcho is the host's own share of an invocation, as the host
// child of a node spends it: the invocations (Echo.Echo, 256 bytes) are
// signed before the measurement and the NATS server is the real binary in
// a process of its own (testenv.ExternalNATS), so this process's CPU per
// call (cpu-µs/op) is the host's receive pipeline — decode, the issuer
// check with its Ed25519 verify, the replay guard, the instance pool, the
// wasm echo, the reply — plus the client's sending and receiving of the
// bytes. BenchmarkInvokeEcho measures the whole round trip in one process.
func BenchmarkServeEcho(b *testing.B) {
	f := newFixtureAt(b, testenv.ExternalNATS(b).URL)
	echo := f.startActor(b, echoPkg, 2, trust.SignActorOptions{Name: "echo"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := f.h.WaitCompiled(ctx, echo.Key); err != nil {
		b.Fatal(err)
	}
	caller, err := trust.CreateKeyPair(lattice.KindModule)
	if err != nil {
		b.Fatal(err)
	}
	origin, target := lattice.ActorEntity(caller.PublicKey()), lattice.ActorEntity(echo.Key)
	subject, payload := lattice.RPCActor("test", echo.Key), make([]byte, 256)
	// One invocation per call: the replay guard refuses an id seen before.
	msgs := make([][]byte, b.N)
	for i := range msgs {
		inv, err := trust.NewInvocation(f.cluster, f.h.ID(), origin, target, "Echo.Echo", payload)
		if err != nil {
			b.Fatal(err)
		}
		if msgs[i], err = inv.Encode(); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	b.SetParallelism(32) // 64 callers on 2 cores, as the bench's node rows at c=64
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpubench.Process()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m, err := f.nc.Request(subject, msgs[next.Add(1)-1], 10*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			resp, err := lattice.DecodeInvocationResponse(m.Data)
			if err != nil {
				b.Fatal(err)
			}
			if resp.Error != "" || len(resp.Msg) != len(payload) {
				b.Fatalf("echo answered %d bytes, error %q", len(resp.Msg), resp.Error)
			}
		}
	})
	reportCPUPerOp(b, cpu)
}
