package lattice_test

import (
	"fmt"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/wire"
)

// A host signs an invocation with its cluster key; a receiver that trusts
// that key accepts it for the addressed actor and refuses it for any other.
func ExampleIssuerPolicy_Check() {
	cluster, _ := lattice.CreateKeyPair(lattice.KindCluster)
	host, _ := lattice.CreateKeyPair(lattice.KindServer)
	caller, _ := lattice.CreateKeyPair(lattice.KindModule)
	target, _ := lattice.CreateKeyPair(lattice.KindModule)

	inv, _ := lattice.NewInvocation(cluster, host.PublicKey(),
		lattice.ActorEntity(caller.PublicKey()), lattice.ActorEntity(target.PublicKey()),
		"Echo.Echo", []byte("hello"))
	wire, _ := inv.Encode()

	received, _ := lattice.DecodeInvocation(wire)
	policy := lattice.NewIssuerPolicy([]string{cluster.PublicKey()})
	_, err := policy.Check(received, target.PublicKey())
	fmt.Println("for the target:", err)
	_, err = policy.Check(received, caller.PublicKey())
	fmt.Println("for another actor:", lattice.ReasonOf(err))
	// Output:
	// for the target: <nil>
	// for another actor: wrong_target
}

// Signing embeds the claims in the module; any later change to the module's
// code is caught by the hash check.
func ExampleSignActor() {
	module := []byte{0, 'a', 's', 'm', 1, 0, 0, 0} // the smallest valid module
	account, _ := lattice.CreateKeyPair(lattice.KindAccount)
	subject, _ := lattice.CreateKeyPair(lattice.KindModule)

	signed, _, _ := lattice.SignActor(module, lattice.SignActorOptions{
		Name: "echo", Caps: []string{wire.ContractHTTPServer},
	}, account, subject)
	claims, err := lattice.ReadActorClaims(signed)
	fmt.Println(err, claims.Wascap.Name, claims.Wascap.HasCapability(wire.ContractHTTPServer),
		claims.Subject == subject.PublicKey())
	// Output: <nil> echo true true
}
