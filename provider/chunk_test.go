package provider

import (
	"bytes"
	"context"
	"testing"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
)

// A provider of this SDK reads a chunked invocation (docs/protocol.md §3,
// "Large payloads") and chunks a reply over the threshold: both through
// the real object store of the lattice on a real nats-server.
func TestProviderChunksBothWays(t *testing.T) {
	e := newEnv(t)
	start(t, e.hostData(e.link(e.actor, "1")), &fakeCapability{})
	for _, n := range []int{10, rpc.ChunkThreshold, 2 << 20} {
		payload := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
		ctx, cancel := context.WithTimeout(context.Background(), rpc.ChunkTimeout)
		target := lattice.Entity{PublicKey: e.prov, ContractID: testContract, LinkName: "default"}
		out, err := rpc.Invoke(ctx, e.nc, e.cluster, e.hostID, lattice.ActorEntity(e.actor), target,
			lattice.RPCProvider("test", e.prov, "default"), "Thing.Echo", payload)
		cancel()
		if err != nil || !bytes.Equal(out, append([]byte("1:"), payload...)) {
			t.Fatalf("%d bytes in: %d bytes out, %v", n, len(out), err)
		}
	}
}
