package supervisor

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/child"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/trust"
)

// A provider gets a signing key of its own, never the cluster seed; its key
// reaches actors until the provider is revoked, and from then on no host
// accepts it, even presented by a connection with valid NATS credentials.
func TestProviderSigningKeyIsDelegatedAndRevoked(t *testing.T) {
	echo := echoActor(t)
	n := startNode(t, nil, "file://"+echo.Path)
	ref := "file://" + providerBin
	n.launch(ref, "default", "")
	desc := n.waitProviderState(ref, "default", child.StateRunning)
	if desc.Signing != lattice.SigningDelegated {
		t.Fatalf("inventory says signing %q", desc.Signing)
	}
	p := n.instance(ref, "default")
	p.mu.Lock()
	sg, instanceID := p.signing, p.instanceID
	p.mu.Unlock()
	if sg.key.Kind() != lattice.KindService || sg.key.Seed() == n.cluster.Seed() || sg.token == "" {
		t.Fatalf("provider signs with a %s key (cluster seed handed out: %v)", sg.key.Kind(), sg.key.Seed() == n.cluster.Seed())
	}
	tok, err := trust.ParseJWT[trust.Delegation](sg.token)
	if err != nil || tok.Issuer != n.cluster.PublicKey() || tok.Subject != sg.key.PublicKey() ||
		tok.Wascap.Provider.PublicKey != p.key || tok.Wascap.InstanceID != instanceID || tok.Expires == 0 {
		t.Fatalf("delegation %+v, %v", tok, err)
	}

	origin := lattice.Entity{PublicKey: p.key, ContractID: p.contract, LinkName: "default"}
	signer := trust.Signer{Key: sg.key, Delegation: sg.token}
	call := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := rpc.InvokeAs(ctx, n.nc, signer, n.s.HostID(), origin, lattice.ActorEntity(echo.Key),
			lattice.RPCActor(n.cfg.LatticePrefix, echo.Key), "Echo.Echo", []byte("x"))
		return err
	}
	if err := call(); err != nil {
		t.Fatalf("delegated invocation before revocation: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := n.s.Revoke(ctx, lattice.StopProviderCommand{ProviderRef: p.key, LinkName: "default"}); err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if err := call(); err == nil || !strings.Contains(err.Error(), "revoked") {
			return fmt.Errorf("after revocation: %v", err)
		}
		return nil
	})
}

func TestCompatModeHandsOutTheClusterSeedAndSaysSo(t *testing.T) {
	n := startNode(t, nil)
	ref := "file://" + providerBin
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.admin.LaunchProvider(ctx, lattice.LaunchProviderCommand{ProviderRef: ref, LinkName: "default", CompatClusterSeed: true}); err != nil {
		t.Fatal(err)
	}
	desc := n.waitProviderState(ref, "default", child.StateRunning)
	p := n.instance(ref, "default")
	p.mu.Lock()
	sg := p.signing
	p.mu.Unlock()
	if desc.Signing != lattice.SigningClusterSeed || sg.key.Seed() != n.cluster.Seed() || sg.token != "" {
		t.Fatalf("compat provider: signing %q, cluster seed handed out %v", desc.Signing, sg.key.Seed() == n.cluster.Seed())
	}
}

func TestDelegationIsRenewedWhileHealthy(t *testing.T) {
	n := startNodeWith(t, nil, func(s *Supervisor) { s.delegationLifetime = 2 * time.Second })
	ref := "file://" + providerBin
	n.launch(ref, "default", "")
	n.waitProviderState(ref, "default", child.StateRunning)
	p := n.instance(ref, "default")
	p.mu.Lock()
	first := p.signing
	p.mu.Unlock()
	testenv.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.signing.token == first.token {
			return fmt.Errorf("delegation not renewed yet")
		}
		if p.signing.key != first.key || !p.signing.expires.After(first.expires) {
			return fmt.Errorf("renewal changed the key or did not extend the expiry")
		}
		return nil
	})
}

// A renewed delegation sent while a provider is between connections is
// lost (core NATS), and the provider would sign with the old token until it
// expired. So with each health check the supervisor sends a healthy
// provider its current token again; the SDK ignores a repeat
// (provider.TestDelegationTakesOnlyALaterTokenForItsKey). This checks the
// repeats: sent, equal to the current token, and not refused.
func TestProviderIsSentItsCurrentDelegationAgain(t *testing.T) {
	n := startNode(t, nil)
	ref := "builtin:httpserver" // a provider built on the SDK
	n.launch(ref, "default", "")
	n.waitProviderState(ref, "default", child.StateRunning)
	p := n.instance(ref, "default")
	p.mu.Lock()
	current := p.signing.token
	p.mu.Unlock()
	if current == "" {
		t.Fatal("the provider has no delegation")
	}
	wantRepeats(t, n, lattice.RPCDelegation(n.cfg.LatticePrefix, p.key, "default"), current, "ignoring a delegation token")
}

// wantRepeats waits for the supervisor to send current on subject twice
// (a repeat with each health check: the node's interval is 500 ms), and
// checks that the provider did not log refusal for a repeat.
func wantRepeats(t *testing.T, n *node, subject, current, refusal string) {
	t.Helper()
	sub, err := n.nc.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	for i := range 2 {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("sent on %s %d times in 10s, want 2: %v", subject, i, err)
		}
		if string(m.Data) != current {
			t.Fatalf("sent on %s something other than the provider's current one", subject)
		}
	}
	if strings.Contains(n.logs.String(), refusal) {
		t.Errorf("the provider refused a repeat:\n%s", tail(n.logs.String(), 40))
	}
}
