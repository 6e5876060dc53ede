package host

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

// A provider signing with a delegated key reaches actors on every node until
// its key is revoked in the lattice cache; then every node refuses it.
func TestRevokedDelegationIsRefusedOnEveryNode(t *testing.T) {
	srv := testenv.NATS(t)
	a := newFixtureAt(t, srv.ClientURL())
	b := peer(t, a, srv.ClientURL())
	sa := testenv.SignActor(t, a.dir, echoPkg, trust.SignActorOptions{Name: "echo", Caps: []string{wire.ContractHTTPServer}})
	for _, f := range []*fixture{a, b} {
		var ack lattice.Ack
		f.ctlRequest(t, f.ctl.Cmd(f.h.ID(), lattice.CmdLaunchActor), lattice.StartActorCommand{ActorRef: "file://" + sa.Path}, &ack)
		if !ack.Accepted {
			t.Fatal(ack.Error)
		}
	}
	providerKey, _ := trust.CreateKeyPair(lattice.KindService)
	provider := lattice.Entity{PublicKey: providerKey.PublicKey(), ContractID: wire.ContractHTTPServer, LinkName: "default"}
	signing, _ := trust.CreateKeyPair(lattice.KindService)
	token, err := trust.IssueDelegation(a.cluster, signing.PublicKey(), provider, "inst", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	signer := trust.Signer{Key: signing, Delegation: token}
	req, _ := lattice.Marshal(wire.HTTPRequest{Method: "GET", Path: "/d"})
	call := func(f *fixture) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// Address each host's instance directly through a fresh invocation;
		// the queue group picks a host, so try until both answered.
		_, err := rpc.InvokeAs(ctx, f.nc, signer, f.h.ID(), provider, lattice.ActorEntity(sa.Key), lattice.RPCActor("test", sa.Key), wire.OpHTTPHandleRequest, req)
		return err
	}
	for i := 0; i < 20; i++ {
		if err := call(a); err != nil {
			t.Fatalf("delegated call before revocation: %v", err)
		}
	}
	// A delegation used as another origin is refused.
	other := provider
	other.PublicKey = signing.PublicKey()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, err = rpc.InvokeAs(ctx, a.nc, signer, a.h.ID(), other, lattice.ActorEntity(sa.Key), lattice.RPCActor("test", sa.Key), wire.OpHTTPHandleRequest, req)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "bad_delegation") {
		t.Fatalf("spoofed origin: %v", err)
	}

	rv, _ := json.Marshal(lattice.DelegationRevocation{SigningKey: signing.PublicKey(), Provider: provider, InstanceID: "inst",
		RevokedAt: time.Now(), Until: time.Now().Add(time.Hour)})
	if _, err := a.h.cache.Load().js.Publish(context.Background(), lattice.Revocation("test", signing.PublicKey()), rv); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*fixture{a, b} {
		testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
			if f.h.issuers.Revoked(signing.PublicKey()) {
				return nil
			}
			return errString("revocation not applied on " + f.h.ID())
		})
	}
	// Every delivery now fails, whichever host the queue group picks.
	for i := 0; i < 20; i++ {
		if err := call(a); err == nil || !strings.Contains(err.Error(), "revoked") {
			t.Fatalf("call %d after revocation: %v", i, err)
		}
	}
}
