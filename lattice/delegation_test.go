package lattice

import (
	"testing"
	"time"

	"github.com/latticed/latticed/wire"
)

type delegFixture struct {
	cluster, signer *KeyPair
	provider        Entity
	actor           string
	token           string
	policy          *IssuerPolicy
	now             time.Time
}

func newDelegFixture(t testing.TB) *delegFixture {
	t.Helper()
	f := &delegFixture{cluster: mustKey(t, KindCluster), signer: mustKey(t, KindService), actor: mustKey(t, KindModule).PublicKey(), now: time.Now()}
	f.provider = Entity{PublicKey: mustKey(t, KindService).PublicKey(), ContractID: wire.ContractHTTPServer, LinkName: "default"}
	var err error
	f.token, err = IssueDelegation(f.cluster, f.signer.PublicKey(), f.provider, "inst-1", 10*time.Minute, f.now)
	if err != nil {
		t.Fatal(err)
	}
	// f.now moves on with the real clock (the invocations carry the real
	// time as iat; a stopped clock would see them in the future once a
	// second boundary passes), and jumps when a test moves f.now.
	base := f.now
	f.policy = NewIssuerPolicy([]string{f.cluster.PublicKey()}, WithClock(func() time.Time { return f.now.Add(time.Since(base)) }))
	return f
}

func (f *delegFixture) invoke(t testing.TB, s Signer, origin Entity) *Invocation {
	t.Helper()
	host := mustKey(t, KindServer)
	inv, err := s.NewInvocation(host.PublicKey(), origin, ActorEntity(f.actor), wire.OpHTTPHandleRequest, []byte("x"))
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
	back, err := DecodeInvocation(b)
	if err != nil || back.Delegation != f.token {
		t.Fatalf("delegation lost on the wire: %v", err)
	}
	if _, err := f.policy.Check(back, f.actor); err != nil {
		t.Fatal(err)
	}

	other := f.provider
	other.PublicKey = mustKey(t, KindService).PublicKey()
	stranger := mustKey(t, KindCluster)
	strangerToken, _ := IssueDelegation(stranger, f.signer.PublicKey(), f.provider, "i", time.Minute, f.now)
	expired, _ := IssueDelegation(f.cluster, f.signer.PublicKey(), f.provider, "i", time.Minute, f.now.Add(-time.Hour))
	wrongKey := mustKey(t, KindService)

	for _, tc := range []struct {
		name   string
		inv    *Invocation
		reason RejectReason
	}{
		{"claims another origin", f.invoke(t, s, other), ReasonBadDelegation},
		{"claims to be an actor", f.invoke(t, s, ActorEntity(mustKey(t, KindModule).PublicKey())), ReasonBadDelegation},
		{"no delegation", f.invoke(t, Signer{Key: f.signer}, f.provider), ReasonUnknownIssuer},
		{"delegated by an untrusted cluster", f.invoke(t, Signer{Key: f.signer, Delegation: strangerToken}, f.provider), ReasonBadDelegation},
		{"expired delegation", f.invoke(t, Signer{Key: f.signer, Delegation: expired}, f.provider), ReasonExpired},
		{"token of another key", f.invoke(t, Signer{Key: wrongKey, Delegation: f.token}, f.provider), ReasonBadDelegation},
		{"another contract", f.invoke(t, s, entity(f.provider.PublicKey, wire.ContractKeyValue, "default")), ReasonBadDelegation},
		{"another link name", f.invoke(t, s, entity(f.provider.PublicKey, wire.ContractHTTPServer, "other")), ReasonBadDelegation},
		{"garbage token", f.invoke(t, Signer{Key: f.signer, Delegation: "x.y.z"}, f.provider), ReasonBadDelegation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.policy.Check(tc.inv, f.actor); ReasonOf(err) != tc.reason {
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
	if _, err := f.policy.Check(f.invoke(t, s, f.provider), f.actor); ReasonOf(err) != ReasonRevoked {
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
func BenchmarkIssuerPolicyCheck(b *testing.B) {
	for _, mode := range []string{"cluster", "delegated"} {
		b.Run(mode, func(b *testing.B) {
			f := newDelegFixture(b)
			s, origin := Signer{Key: f.cluster}, f.provider
			if mode == "delegated" {
				s = Signer{Key: f.signer, Delegation: f.token}
			}
			inv := f.invoke(b, s, origin)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := f.policy.Check(inv, f.actor); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func entity(key, contract, link string) Entity {
	return Entity{PublicKey: key, ContractID: contract, LinkName: link}
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
	if _, err := f.policy.Check(f.invoke(t, s, entity(mustKey(t, KindService).PublicKey(), "acme:anything", "default")), f.actor); ReasonOf(err) != ReasonBadDelegation {
		t.Fatalf("other provider key: %v", err)
	}
}
