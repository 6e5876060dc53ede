package supervisor

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/latticed/latticed/rpc"
)

// chunkBucketTimeout bounds creating the lattice object store at start.
const chunkBucketTimeout = 10 * time.Second

// ensureChunkBucket creates the lattice's object store for large payloads
// (docs/protocol.md §3, "Large payloads") with rpc.ChunkMaxAge, or accepts
// the one another host made: no role may create streams, so the bucket
// must exist before the host and providers chunk. It uses the account's
// own JetStream API, as every chunking peer does (wasmbus-rpc never passes
// a JetStream domain).
func (s *Supervisor) ensureChunkBucket() error {
	ctx, cancel := context.WithTimeout(context.Background(), chunkBucketTimeout)
	defer cancel()
	js, err := jetstream.New(s.nc)
	if err != nil {
		return fmt.Errorf("lattice object store: %w", err)
	}
	if _, err := rpc.EnsureChunkBucket(ctx, js, s.prefix); err != nil {
		return err
	}
	return nil
}
