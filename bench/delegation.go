package main

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/wire"
)

// benchDelegation is issue 13's row: a provider invoking an actor through
// the latticed path (rpc.InvokeAs, provider-origin entity, 256-byte
// Echo.Echo), signing with a delegated service key plus the delegation token
// that vouches for it, vs signing with the cluster key itself. Runs at
// concurrency 16, alternating twice, and keeps the mean of each.
func benchDelegation(nc *nats.Conn, cluster *lattice.KeyPair, hostID, actorKey string, d time.Duration, rep *Report) error {
	providerKey, _ := lattice.CreateKeyPair(lattice.KindService)
	origin := lattice.Entity{PublicKey: providerKey.PublicKey(), ContractID: wire.ContractHTTPServer, LinkName: "default"}
	signing, _ := lattice.CreateKeyPair(lattice.KindService)
	token, err := lattice.IssueDelegation(cluster, signing.PublicKey(), origin, "bench", time.Hour, time.Now())
	if err != nil {
		return err
	}
	subject := lattice.RPCActor(lattice.DefaultLatticePrefix, actorKey)
	call := func(s lattice.Signer) func([]byte) error {
		return func(p []byte) error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			out, err := rpc.InvokeAs(ctx, nc, s, hostID, origin, lattice.ActorEntity(actorKey), subject, "Echo.Echo", p)
			if err == nil && len(out) != len(p) {
				err = fmt.Errorf("bad reply")
			}
			return err
		}
	}
	signers := []struct {
		name string
		s    lattice.Signer
	}{
		{"cluster seed", lattice.Signer{Key: cluster}},
		{"delegated key + token", lattice.Signer{Key: signing, Delegation: token}},
	}
	const conc, rounds = 16, 2
	payload := make([]byte, payloadSize)
	var sum [2]float64
	for r := 0; r < rounds; r++ {
		for i, s := range signers {
			rps, _, errs, _ := load(call(s.s), payload, conc, d)
			if errs > 0 {
				return fmt.Errorf("provider -> actor (%s): %d errors", s.name, errs)
			}
			sum[i] += rps / rounds
		}
	}
	rep.Rows = append(rep.Rows,
		Row{Name: fmt.Sprintf("provider -> actor c=%d: signed with cluster seed", conc), Value: sum[0], Unit: "req/s"},
		Row{Name: fmt.Sprintf("provider -> actor c=%d: delegated signing vs cluster seed (target >= 0.95)", conc), Value: sum[1], Unit: "req/s", Ratio: sum[1] / sum[0], RatioTo: "cluster seed"})
	return nil
}
