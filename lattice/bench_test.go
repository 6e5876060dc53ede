package lattice_test

import (
	"testing"

	"github.com/latticed/latticed/internal/testing/cpubench"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// Micro-benchmarks of the per-invocation codec.
//
//	go test ./lattice -run '^$' -bench 'Invocation|Response' -benchmem
//
// The signing and verification benchmarks are in package trust.

func benchInvocation(b *testing.B) (*lattice.Invocation, []byte) {
	b.Helper()
	cluster, err := trust.CreateKeyPair(lattice.KindCluster)
	if err != nil {
		b.Fatal(err)
	}
	caller, actor, host := benchKey(lattice.KindModule), benchKey(lattice.KindModule), benchKey(lattice.KindServer)
	inv, err := trust.NewInvocation(cluster, host, lattice.ActorEntity(caller), lattice.ActorEntity(actor), "Echo.Echo", make([]byte, 256))
	if err != nil {
		b.Fatal(err)
	}
	data, err := inv.Encode()
	if err != nil {
		b.Fatal(err)
	}
	return inv, data
}

// BenchmarkEncodeInvocation is msgpack encoding of a signed invocation with
// a 256-byte payload.
func BenchmarkEncodeInvocation(b *testing.B) {
	inv, data := benchInvocation(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	cpubench.Measure(b, func() {
		if _, err := inv.Encode(); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkDecodeInvocation is the receiving side's msgpack decode.
func BenchmarkDecodeInvocation(b *testing.B) {
	_, data := benchInvocation(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	cpubench.Measure(b, func() {
		if _, err := lattice.DecodeInvocation(data); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkEncodeDecodeResponse is the reply's round trip.
func BenchmarkEncodeDecodeResponse(b *testing.B) {
	r := &lattice.InvocationResponse{Msg: make([]byte, 256), InvocationID: "id", ContentLength: 256}
	b.ReportAllocs()
	cpubench.Measure(b, func() {
		data, err := r.Encode()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := lattice.DecodeInvocationResponse(data); err != nil {
			b.Fatal(err)
		}
	})
}

// benchKey is a fresh public key of the given role (a valid role: only a
// failing random source could make CreateKeyPair fail).
func benchKey(kind lattice.KeyKind) string {
	kp, _ := trust.CreateKeyPair(kind)
	return kp.PublicKey()
}
