package trust

import (
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/testing/cpubench"
	"github.com/latticed/latticed/lattice"
)

// Micro-benchmarks of signing and verification: what a caller pays per
// invocation, what the issuer check pays, and claims verification at actor
// start.
//
//	go test ./trust -run '^$' -bench . -benchmem

// BenchmarkNewInvocation is what a caller pays per call: hash, sign the
// invocation claims (Ed25519), build the invocation.
func BenchmarkNewInvocation(b *testing.B) {
	cluster := mustKey(b, lattice.KindCluster)
	host := mustKey(b, lattice.KindServer)
	origin, target := lattice.ActorEntity(mustKey(b, lattice.KindModule).PublicKey()), lattice.ActorEntity(mustKey(b, lattice.KindModule).PublicKey())
	msg := make([]byte, 256)
	b.ReportAllocs()
	cpubench.Measure(b, func() {
		if _, err := NewInvocation(cluster, host.PublicKey(), origin, target, "Echo.Echo", msg); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkParseJWT verifies the signature of an invocation's claims token
// (decode + Ed25519 verify), the per-invocation cost of the issuer check.
func BenchmarkParseJWT(b *testing.B) {
	cluster, host := mustKey(b, lattice.KindCluster), mustKey(b, lattice.KindServer)
	inv, err := NewInvocation(cluster, host.PublicKey(), lattice.ActorEntity(mustKey(b, lattice.KindModule).PublicKey()), lattice.ActorEntity(mustKey(b, lattice.KindModule).PublicKey()), "Echo.Echo", make([]byte, 256))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpubench.Measure(b, func() {
		if _, err := ParseJWT[InvocationClaims](inv.EncodedClaims); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkVerifyActor is claims verification at actor start: strip the
// claims sections, hash the module, verify the token, check its times; for
// a tiny module and for one about the size of the Go echo actor.
func BenchmarkVerifyActor(b *testing.B) {
	for _, size := range []int{1 << 10, 2 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			module := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
			pad := append([]byte{3, 'p', 'a', 'd'}, make([]byte, size)...)
			module = appendSection(module, 0, pad)
			signed, _, err := SignActor(module, SignActorOptions{Name: "bench"}, mustKey(b, lattice.KindAccount), mustKey(b, lattice.KindModule))
			if err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			b.SetBytes(int64(len(signed)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := VerifyActor(signed, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCryptoFloor is the cryptography the protocol requires per call,
// alone: one Ed25519 sign and one verify of a 256-byte message. The bench's
// crypto floor pays exactly this; BenchmarkProtocolRoundTrip is what
// latticed pays for the same call without transport and wasm.
func BenchmarkCryptoFloor(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	msg := make([]byte, 256)
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, msg, ed25519.Sign(priv, msg)) {
			b.Fatal("verify failed")
		}
	}
}

// BenchmarkProtocolRoundTrip is one call's protocol work on both sides:
// the caller builds, signs and encodes the invocation; the host decodes it,
// runs the issuer check and encodes a reply, which the caller decodes.
func BenchmarkProtocolRoundTrip(b *testing.B) {
	cluster := mustKey(b, lattice.KindCluster)
	host := mustKey(b, lattice.KindServer)
	origin, target := lattice.ActorEntity(mustKey(b, lattice.KindModule).PublicKey()), lattice.ActorEntity(mustKey(b, lattice.KindModule).PublicKey())
	policy := NewIssuers([]string{cluster.PublicKey()})
	msg := make([]byte, 256)
	b.ReportAllocs()
	for b.Loop() {
		inv, err := NewInvocation(cluster, host.PublicKey(), origin, target, "Echo.Echo", msg)
		if err != nil {
			b.Fatal(err)
		}
		data, err := inv.Encode()
		if err != nil {
			b.Fatal(err)
		}
		got, err := lattice.DecodeInvocation(data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := policy.Check(got, target.PublicKey); err != nil {
			b.Fatal(err)
		}
		out, err := (&lattice.InvocationResponse{InvocationID: got.ID, Msg: got.Msg, ContentLength: uint64(len(got.Msg))}).Encode()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := lattice.DecodeInvocationResponse(out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCallerWork is what a caller pays per call besides the transport,
// next to what the bench's crypto floor's client pays (one Ed25519 sign of
// the payload): "actor" is an actor-to-actor call signed with the cluster
// key (`latticed ctl call`, the bench's node client), "provider" the HTTP
// server provider's call, a provider origin signed with a delegated key.
// Each builds, signs and encodes the invocation and decodes a reply. The
// difference to "floor" is the protocol's cost on the caller's side.
func BenchmarkCallerWork(b *testing.B) {
	msg := make([]byte, 256)
	b.Run("floor", func(b *testing.B) {
		_, priv, _ := ed25519.GenerateKey(nil)
		b.ReportAllocs()
		cpubench.Measure(b, func() { _ = append(append([]byte(nil), msg...), ed25519.Sign(priv, msg)...) })
	})
	cluster, host := mustKey(b, lattice.KindCluster), mustKey(b, lattice.KindServer)
	actor := lattice.ActorEntity(mustKey(b, lattice.KindModule).PublicKey())
	delegated := mustKey(b, lattice.KindService)
	prov := lattice.Entity{PublicKey: mustKey(b, lattice.KindService).PublicKey(), ContractID: "wasmcloud:httpserver", LinkName: "default"}
	token, err := IssueDelegation(cluster, delegated.PublicKey(), prov, "instance", time.Hour, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	reply, err := (&lattice.InvocationResponse{InvocationID: "6f1c4a9e-6a3c-4c4e-9d1e-3b1f1f9b2a77", Msg: msg, ContentLength: uint64(len(msg))}).Encode()
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		signer Signer
		origin lattice.Entity
	}{
		{"actor", Signer{Key: cluster}, lattice.ActorEntity(mustKey(b, lattice.KindModule).PublicKey())},
		{"provider", Signer{Key: delegated, Delegation: token}, prov},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			cpubench.Measure(b, func() {
				inv, err := tc.signer.NewInvocation(host.PublicKey(), tc.origin, actor, "Echo.Echo", msg)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := inv.Encode(); err != nil {
					b.Fatal(err)
				}
				if _, err := lattice.DecodeInvocationResponse(reply); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}
