package main

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

// benchDelegation is issue 13's row: a provider invoking an actor through
// the latticed path (rpc.InvokeAs, provider-origin entity, 256-byte
// Echo.Echo), signing with a delegated service key plus the delegation token
// that vouches for it, vs signing with the cluster key itself. Runs at
// concurrency 16, alternating twice, and keeps the mean of each.
func benchDelegation(nc *nats.Conn, cluster *trust.KeyPair, hostID, actorKey string, d time.Duration, rep *Report) error {
	providerKey, _ := trust.CreateKeyPair(lattice.KindService)
	origin := lattice.Entity{PublicKey: providerKey.PublicKey(), ContractID: wire.ContractHTTPServer, LinkName: "default"}
	signing, _ := trust.CreateKeyPair(lattice.KindService)
	token, err := trust.IssueDelegation(cluster, signing.PublicKey(), origin, "bench", time.Hour, time.Now())
	if err != nil {
		return err
	}
	subject := lattice.RPCActor(lattice.DefaultLatticePrefix, actorKey)
	call := func(s trust.Signer) func([]byte) error {
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
		s    trust.Signer
	}{
		{"cluster seed", trust.Signer{Key: cluster}},
		{"delegated key + token", trust.Signer{Key: signing, Delegation: token}},
	}
	const conc, rounds = 16, 2
	payload := make([]byte, payloadSize)
	var sum, cpu [2]float64
	for r := 0; r < rounds; r++ {
		for i, s := range signers {
			got, errs := measureCell(call(s.s), payload, conc, d, processCPU)
			if errs > 0 {
				return fmt.Errorf("provider -> actor (%s): %d errors", s.name, errs)
			}
			sum[i] += got.rps / rounds
			cpu[i] += got.cpuPerCall / rounds
		}
	}
	rep.Rows = append(rep.Rows,
		Row{Name: fmt.Sprintf("provider -> actor c=%d: signed with cluster seed", conc), Value: sum[0], Unit: "req/s"},
		Row{Name: fmt.Sprintf("provider -> actor c=%d: delegated signing vs cluster seed (target >= 0.95)", conc), Value: sum[1], Unit: "req/s", Ratio: sum[1] / sum[0], RatioTo: "cluster seed"},
		Row{Name: fmt.Sprintf("CPU per call provider -> actor c=%d: signed with cluster seed", conc), Value: cpu[0], Unit: "µs"},
		Row{Name: fmt.Sprintf("CPU per call provider -> actor c=%d: delegated signing", conc), Value: cpu[1], Unit: "µs", Ratio: cpu[1] / cpu[0], RatioTo: "cluster seed"})
	return nil
}
