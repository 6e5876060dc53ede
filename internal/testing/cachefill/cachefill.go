// Package cachefill writes link definitions into a lattice cache stream the
// way a wasmCloud host does (docs/protocol.md §10, §11), in bulk: the tests
// and the bench build lattices of tens of thousands of links with it.
package cachefill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/latticed/latticed/lattice"
)

// wasmCloudLink is a link definition as a wasmCloud host writes it to
// lc.{prefix}.linkdefs.{id}: these six fields, values a string map.
type wasmCloudLink struct {
	ID         string            `json:"id"`
	ActorID    string            `json:"actor_id"`
	ProviderID string            `json:"provider_id"`
	LinkName   string            `json:"link_name"`
	ContractID string            `json:"contract_id"`
	Values     map[string]string `json:"values"`
}

// EnsureStream creates LATTICECACHE_{prefix} as a wasmCloud host does
// (memory storage, one message per subject) unless it exists.
func EnsureStream(ctx context.Context, js jetstream.JetStream, prefix string) error {
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: lattice.CacheStream(prefix), Subjects: []string{lattice.CacheSubjects(prefix)},
		Retention: jetstream.LimitsPolicy, MaxMsgsPerSubject: 1, Discard: jetstream.DiscardOld,
		Storage: jetstream.MemoryStorage,
	})
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return nil
	}
	return err
}

// Links returns n link definitions of provider under link name "default",
// one per contract "bench:filler{i}" of actor, so their ids differ.
func Links(actor, provider string, n int) []lattice.LinkDefinition {
	out := make([]lattice.LinkDefinition, n)
	for i := range out {
		c := fmt.Sprintf("bench:filler%d", i)
		out[i] = lattice.LinkDefinition{ID: lattice.LinkID(actor, c, "default"), ActorID: actor, ProviderID: provider,
			LinkName: "default", ContractID: c, Values: map[string]string{"index": fmt.Sprint(i), "note": "filler link written in wasmCloud's cache format"}}
	}
	return out
}

// Put publishes links to the cache with a window of asynchronous
// publishes, and waits until the stream has acknowledged every one.
func Put(ctx context.Context, js jetstream.JetStream, prefix string, links []lattice.LinkDefinition) error {
	for i := 0; i < len(links); {
		end := min(i+1000, len(links))
		for _, l := range links[i:end] {
			b, err := json.Marshal(wasmCloudLink{ID: l.ID, ActorID: l.ActorID, ProviderID: l.ProviderID, LinkName: l.LinkName, ContractID: l.ContractID, Values: l.Values})
			if err != nil {
				return err
			}
			if _, err := js.PublishAsync(lattice.CacheLinkdef(prefix, l.ID), b); err != nil {
				return fmt.Errorf("publish link %d: %w", i, err)
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(30 * time.Second):
			return errors.New("the lattice cache did not acknowledge 1000 links within 30s")
		}
		i = end
	}
	return nil
}
