package trust

import (
	"strings"
	"testing"
	"time"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/wire"
)

type invFixture struct {
	cluster *KeyPair
	host    *KeyPair
	actor   string
	policy  *Issuers
}

func newInvFixture(t *testing.T, opts ...IssuersOption) invFixture {
	t.Helper()
	f := invFixture{cluster: mustKey(t, lattice.KindCluster), host: mustKey(t, lattice.KindServer), actor: mustKey(t, lattice.KindModule).PublicKey()}
	f.policy = NewIssuers([]string{f.cluster.PublicKey()}, opts...)
	return f
}

func (f invFixture) invoke(t *testing.T, origin lattice.Entity, op string, msg []byte) *lattice.Invocation {
	t.Helper()
	inv, err := NewInvocation(f.cluster, f.host.PublicKey(), origin, lattice.ActorEntity(f.actor), op, msg)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func TestIssuersAcceptValid(t *testing.T) {
	f := newInvFixture(t)
	inv := f.invoke(t, lattice.ActorEntity(mustKey(t, lattice.KindModule).PublicKey()), "Echo.Echo", []byte("x"))
	if _, err := f.policy.Check(inv, f.actor); err != nil {
		t.Fatal(err)
	}
}

func TestIssuersRejectEachWithItsReason(t *testing.T) {
	// The real clock: the fixture's tokens carry the real time as iat, and
	// a clock stopped before they were made would see them in the future
	// once a second boundary passes (a flake on a loaded machine).
	f := newInvFixture(t, WithReplayGuard(NewReplayGuard(5*time.Minute, 1000)), WithClock(time.Now))
	provider := lattice.Entity{PublicKey: mustKey(t, lattice.KindService).PublicKey(), ContractID: wire.ContractHTTPServer, LinkName: "default"}
	stranger := mustKey(t, lattice.KindCluster)

	cases := map[string]struct {
		mutate func(*lattice.Invocation)
		target string
		want   lattice.RejectReason
	}{
		"forged signature": {func(i *lattice.Invocation) {
			p := strings.Split(i.EncodedClaims, ".")
			sig, _ := b64url.DecodeString(p[2])
			sig[0] ^= 0xff
			i.EncodedClaims = p[0] + "." + p[1] + "." + b64url.EncodeToString(sig)
		}, "", lattice.ReasonBadSignature},
		"unknown issuer": {func(i *lattice.Invocation) {
			other, _ := NewInvocation(stranger, f.host.PublicKey(), i.Origin, i.Target, i.Operation, i.Msg)
			*i = *other
		}, "", lattice.ReasonUnknownIssuer},
		"tampered body":        {func(i *lattice.Invocation) { i.Msg = []byte("y") }, "", lattice.ReasonHashMismatch},
		"tampered op":          {func(i *lattice.Invocation) { i.Operation = "Other.Op" }, "", lattice.ReasonHashMismatch},
		"wrong target":         {func(*lattice.Invocation) {}, mustKey(t, lattice.KindModule).PublicKey(), lattice.ReasonWrongTarget},
		"retargeted":           {func(i *lattice.Invocation) { i.Target.PublicKey = mustKey(t, lattice.KindModule).PublicKey() }, "", lattice.ReasonHashMismatch},
		"bad host id":          {func(i *lattice.Invocation) { i.HostID = "N123" }, "", lattice.ReasonBadHostID},
		"chunked, not fetched": {func(i *lattice.Invocation) { i.Msg = nil; i.ContentLength = 800 << 10 }, "", lattice.ReasonHashMismatch},
		"id swapped":           {func(i *lattice.Invocation) { i.ID = "another-id" }, "", lattice.ReasonReplayed},
		"not a jwt":            {func(i *lattice.Invocation) { i.EncodedClaims = "nope" }, "", lattice.ReasonBadSignature},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			inv := f.invoke(t, provider, wire.OpHTTPHandleRequest, []byte("x"))
			tc.mutate(inv)
			target := f.actor
			if tc.target != "" {
				target = tc.target
			}
			_, err := f.policy.Check(inv, target)
			if got := lattice.ReasonOf(err); got != tc.want {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.want)
			}
		})
	}
}

func TestReplayIsRejected(t *testing.T) {
	now := time.Now()
	f := newInvFixture(t, WithReplayGuard(NewReplayGuard(time.Minute, 1000)), WithClock(time.Now))
	inv := f.invoke(t, lattice.ActorEntity(mustKey(t, lattice.KindModule).PublicKey()), "Echo.Echo", nil)
	if _, err := f.policy.Check(inv, f.actor); err != nil {
		t.Fatal(err)
	}
	if _, err := f.policy.Check(inv, f.actor); lattice.ReasonOf(err) != lattice.ReasonReplayed {
		t.Fatalf("replay: %v", err)
	}
	// A token older than the window is refused by a node that never saw its id.
	later := NewIssuers([]string{f.cluster.PublicKey()}, WithReplayGuard(NewReplayGuard(time.Minute, 1000)),
		WithClock(func() time.Time { return now.Add(3 * time.Minute) }))
	_, err := later.Check(inv, f.actor)
	if lattice.ReasonOf(err) != lattice.ReasonReplayed || !strings.Contains(err.Error(), "older than") {
		t.Fatalf("stale: %v", err)
	}
}
