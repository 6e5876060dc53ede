package trust

import (
	"testing"
	"time"

	"github.com/latticed/latticed/internal/testing/cpubench"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/wire"
)

type delegFixture struct {
	cluster, signer *KeyPair
	provider        lattice.Entity
	actor           string
	token           string
	policy          *Issuers
	now             time.Time
}

func newDelegFixture(t testing.TB) *delegFixture {
	t.Helper()
	f := &delegFixture{cluster: mustKey(t, lattice.KindCluster), signer: mustKey(t, lattice.KindService), actor: mustKey(t, lattice.KindModule).PublicKey(), now: time.Now()}
	f.provider = lattice.Entity{PublicKey: mustKey(t, lattice.KindService).PublicKey(), ContractID: wire.ContractHTTPServer, LinkName: "default"}
	var err error
	f.token, err = IssueDelegation(f.cluster, f.signer.PublicKey(), f.provider, "inst-1", 10*time.Minute, f.now)
	if err != nil {
		t.Fatal(err)
	}
	// f.now moves on with the real clock (the invocations carry the real
	// time as iat; a stopped clock would see them in the future once a
	// second boundary passes), and jumps when a test moves f.now.
	base := f.now
	f.policy = NewIssuers([]string{f.cluster.PublicKey()}, WithClock(func() time.Time { return f.now.Add(time.Since(base)) }))
	return f
}

func (f *delegFixture) invoke(t testing.TB, s Signer, origin lattice.Entity) *lattice.Invocation {
	t.Helper()
	host := mustKey(t, lattice.KindServer)
	inv, err := s.NewInvocation(host.PublicKey(), origin, lattice.ActorEntity(f.actor), wire.OpHTTPHandleRequest, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func TestDelegatedSignerIsAcceptedAsItsProviderOnly(t *testing.T) {
	f := newDelegFixture(t)
	s := Signer{Key: f.signer, Delegation: f.token}
	inv := f.invoke(t, s, f.provider)
	// The token travels in the invocation's wire form.
	b, _ := inv.Encode()
	back, err := lattice.DecodeInvocation(b)
	if err != nil || back.Delegation != f.token {
		t.Fatalf("delegation lost on the wire: %v", err)
	}
	if _, err := f.policy.Check(back, f.actor); err != nil {
		t.Fatal(err)
	}

	other := f.provider
	other.PublicKey = mustKey(t, lattice.KindService).PublicKey()
	stranger := mustKey(t, lattice.KindCluster)
	strangerToken, _ := IssueDelegation(stranger, f.signer.PublicKey(), f.provider, "i", time.Minute, f.now)
	expired, _ := IssueDelegation(f.cluster, f.signer.PublicKey(), f.provider, "i", time.Minute, f.now.Add(-time.Hour))
	wrongKey := mustKey(t, lattice.KindService)

	for _, tc := range []struct {
		name   string
		inv    *lattice.Invocation
		reason lattice.RejectReason
	}{
		{"claims another origin", f.invoke(t, s, other), lattice.ReasonBadDelegation},
		{"claims to be an actor", f.invoke(t, s, lattice.ActorEntity(mustKey(t, lattice.KindModule).PublicKey())), lattice.ReasonBadDelegation},
		{"no delegation", f.invoke(t, Signer{Key: f.signer}, f.provider), lattice.ReasonUnknownIssuer},
		{"delegated by an untrusted cluster", f.invoke(t, Signer{Key: f.signer, Delegation: strangerToken}, f.provider), lattice.ReasonBadDelegation},
		{"expired delegation", f.invoke(t, Signer{Key: f.signer, Delegation: expired}, f.provider), lattice.ReasonExpired},
		{"token of another key", f.invoke(t, Signer{Key: wrongKey, Delegation: f.token}, f.provider), lattice.ReasonBadDelegation},
		{"another contract", f.invoke(t, s, entity(f.provider.PublicKey, wire.ContractKeyValue, "default")), lattice.ReasonBadDelegation},
		{"another link name", f.invoke(t, s, entity(f.provider.PublicKey, wire.ContractHTTPServer, "other")), lattice.ReasonBadDelegation},
		{"garbage token", f.invoke(t, Signer{Key: f.signer, Delegation: "x.y.z"}, f.provider), lattice.ReasonBadDelegation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.policy.Check(tc.inv, f.actor); lattice.ReasonOf(err) != tc.reason {
				t.Fatalf("got %v, want %s", err, tc.reason)
			}
		})
	}
}

func TestRevokedSigningKeyIsRefusedEvenWithACachedDelegation(t *testing.T) {
	f := newDelegFixture(t)
	s := Signer{Key: f.signer, Delegation: f.token}
	if _, err := f.policy.Check(f.invoke(t, s, f.provider), f.actor); err != nil {
		t.Fatal(err) // now cached
	}
	f.policy.Revoke(f.signer.PublicKey(), f.now.Add(time.Hour))
	if _, err := f.policy.Check(f.invoke(t, s, f.provider), f.actor); lattice.ReasonOf(err) != lattice.ReasonRevoked {
		t.Fatalf("got %v", err)
	}
	// Past the revocation's end (when every delegation it covered has expired) it is pruned.
	f.now = f.now.Add(2 * time.Hour)
	f.policy.Revoke("another", f.now.Add(time.Hour))
	if f.policy.revoked(f.signer.PublicKey(), f.now) {
		t.Fatal("stale revocation kept")
	}
}

// Steady state: a delegated invocation costs about what a cluster-signed one
// does, because the delegation token is verified once and cached.
func BenchmarkIssuersCheck(b *testing.B) {
	for _, mode := range []string{"cluster", "delegated"} {
		b.Run(mode, func(b *testing.B) {
			f := newDelegFixture(b)
			s, origin := Signer{Key: f.cluster}, f.provider
			if mode == "delegated" {
				s = Signer{Key: f.signer, Delegation: f.token}
			}
			inv := f.invoke(b, s, origin)
			b.ReportAllocs()
			cpubench.Measure(b, func() {
				if _, err := f.policy.Check(inv, f.actor); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

func entity(key, contract, link string) lattice.Entity {
	return lattice.Entity{PublicKey: key, ContractID: contract, LinkName: link}
}

func TestDelegationWithoutContractCoversAnyContractOfItsProvider(t *testing.T) {
	f := newDelegFixture(t)
	open := f.provider
	open.ContractID = ""
	token, _ := IssueDelegation(f.cluster, f.signer.PublicKey(), open, "i", time.Minute, f.now)
	s := Signer{Key: f.signer, Delegation: token}
	if _, err := f.policy.Check(f.invoke(t, s, entity(f.provider.PublicKey, "acme:anything", "default")), f.actor); err != nil {
		t.Fatal(err)
	}
	if _, err := f.policy.Check(f.invoke(t, s, entity(mustKey(t, lattice.KindService).PublicKey(), "acme:anything", "default")), f.actor); lattice.ReasonOf(err) != lattice.ReasonBadDelegation {
		t.Fatalf("other provider key: %v", err)
	}
}
