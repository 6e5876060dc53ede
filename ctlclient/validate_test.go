package ctlclient

import (
	"context"
	"errors"
	"testing"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/wire"
)

// The client refuses bad input before sending it, with the rule the host
// would apply: an early, clear error instead of a host's refusal (or, on an
// older host, an accepted command).
func TestClientRefusesInvalidInputEarly(t *testing.T) {
	l := newLattice(t, false)
	ctx := context.Background()
	host := l.a.ID()
	actor, _ := lattice.CreateKeyPair(lattice.KindModule)
	provider, _ := lattice.CreateKeyPair(lattice.KindService)
	ld := func(name string, values map[string]string) lattice.LinkDefinition {
		return lattice.LinkDefinition{ActorID: actor.PublicKey(), ProviderID: provider.PublicKey(), ContractID: wire.ContractKeyValue, LinkName: name, Values: values}
	}
	cases := map[string]func() error{
		"put link x.>":        func() error { return l.c.PutLink(ctx, ld("x.>", nil)) },
		"put link case twins": func() error { return l.c.PutLink(ctx, ld("", map[string]string{"URL": "a", "url": "b"})) },
		"del link a.b*>":      func() error { return l.c.DelLink(ctx, actor.PublicKey(), wire.ContractKeyValue, "a.b*>") },
		"label x.>":           func() error { return l.c.PutLabel(ctx, host, "x.>", "v") },
		"start count -5": func() error {
			_, err := l.c.StartActor(ctx, host, lattice.StartActorCommand{ActorRef: "file:///nowhere", Count: -5})
			return err
		},
		"stop count -5": func() error { return l.c.StopActor(ctx, host, actor.PublicKey(), -5) },
		"scale count -5": func() error {
			return l.c.ScaleActor(ctx, host, lattice.ScaleActorCommand{ActorID: actor.PublicKey(), Count: -5})
		},
		"start provider x.>": func() error {
			return l.c.StartProvider(ctx, host, lattice.LaunchProviderCommand{ProviderRef: "builtin:keyvalue", LinkName: "x.>"})
		},
		"revoke provider a b": func() error {
			return l.c.RevokeProvider(ctx, host, lattice.StopProviderCommand{ProviderRef: "builtin:keyvalue", LinkName: "a b"})
		},
	}
	for name, call := range cases {
		t.Run(name, func(t *testing.T) {
			if err := call(); !errors.Is(err, lattice.ErrInvalidRequest) {
				t.Fatalf("got %v, want lattice.ErrInvalidRequest", err)
			}
		})
	}
}
