package trust_test

import (
	"fmt"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

// A host signs an invocation with its cluster key; a receiver that trusts
// that key accepts it for the addressed actor and refuses it for any other.
func ExampleIssuers_Check() {
	cluster, _ := trust.CreateKeyPair(lattice.KindCluster)
	host, _ := trust.CreateKeyPair(lattice.KindServer)
	caller, _ := trust.CreateKeyPair(lattice.KindModule)
	target, _ := trust.CreateKeyPair(lattice.KindModule)

	inv, _ := trust.NewInvocation(cluster, host.PublicKey(),
		lattice.ActorEntity(caller.PublicKey()), lattice.ActorEntity(target.PublicKey()),
		"Echo.Echo", []byte("hello"))
	wire, _ := inv.Encode()

	received, _ := lattice.DecodeInvocation(wire)
	issuers := trust.NewIssuers([]string{cluster.PublicKey()})
	_, err := issuers.Check(received, target.PublicKey())
	fmt.Println("for the target:", err)
	_, err = issuers.Check(received, caller.PublicKey())
	fmt.Println("for another actor:", lattice.ReasonOf(err))
	// Output:
	// for the target: <nil>
	// for another actor: wrong_target
}

// Signing embeds the claims in the module; any later change to the module's
// code is caught by the hash check.
func ExampleSignActor() {
	module := []byte{0, 'a', 's', 'm', 1, 0, 0, 0} // the smallest valid module
	account, _ := trust.CreateKeyPair(lattice.KindAccount)
	subject, _ := trust.CreateKeyPair(lattice.KindModule)

	signed, _, _ := trust.SignActor(module, trust.SignActorOptions{
		Name: "echo", Caps: []string{wire.ContractHTTPServer},
	}, account, subject)
	claims, err := trust.ReadActorClaims(signed)
	fmt.Println(err, claims.Wascap.Name, claims.Wascap.HasCapability(wire.ContractHTTPServer),
		claims.Subject == subject.PublicKey())
	// Output: <nil> echo true true
}
