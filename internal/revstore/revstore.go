// Package revstore owns latticed's bucket of delegated signing-key
// revocations, lattice.RevocationsBucket: the one stream configuration the
// host and the supervisor both get-or-create, and the move of revocations an
// older latticed wrote into the lattice cache stream out of it.
//
// Revocations live apart from the lattice cache because wasmCloud 0.60-0.63
// migrate LATTICECACHE_{prefix} into LATTICEDATA_{prefix} with a function
// that crashes on any key type but claims, linkdefs and refmap, and then
// retries forever (docs/protocol.md §11.3).
package revstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/latticed/latticed/internal/jswrite"
	"github.com/latticed/latticed/lattice"
)

// Config is the bucket's stream, a key-value bucket's (BucketStream), so
// `nats kv ls LATTICED_REVOCATIONS_{prefix}` lists it. File storage: a
// revocation must outlive a server restart, or a revoked key would be
// accepted again until its delegations expire.
func Config(prefix string, replicas int) jetstream.StreamConfig {
	return BucketStream(lattice.RevocationsBucket(prefix), replicas)
}

// BucketStream is the stream of the key-value bucket named bucket as
// wasmCloud 0.60-0.63 create LATTICEDATA_{prefix} (docs/protocol.md §11.2):
// one message per key, file storage, no age limit, discard new, direct
// gets, rollups, no deletes of single messages, a two-minute duplicate
// window. latticed's buckets of lattice data all take it.
func BucketStream(bucket string, replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              "KV_" + bucket,
		Subjects:          []string{"$KV." + bucket + ".>"},
		Retention:         jetstream.LimitsPolicy,
		MaxMsgsPerSubject: 1,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxAge:            0,
		MaxMsgSize:        -1,
		MaxConsumers:      -1,
		Discard:           jetstream.DiscardNew,
		Storage:           jetstream.FileStorage,
		Replicas:          max(replicas, 1),
		Duplicates:        2 * time.Minute,
		AllowRollup:       true,
		DenyDelete:        true,
		AllowDirect:       true,
	}
}

// Ensure returns the bucket's stream, creating it when it is missing. A
// stream another node created meanwhile is used as it is.
func Ensure(ctx context.Context, js jetstream.JetStream, prefix string, replicas int) (jetstream.Stream, error) {
	name := lattice.RevocationsStream(prefix)
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, Config(prefix, replicas))
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = js.Stream(ctx, name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("revocations bucket %s: %w", lattice.RevocationsBucket(prefix), err)
	}
	return s, nil
}

// MoveLegacy copies every revocation in the lattice cache stream
// (lattice.LegacyCacheRevocationsFilter) into the bucket, then purges it from
// the cache, and reports how many it moved. Each entry is written before it
// is purged, so a move cut short loses nothing: the next start moves the
// rest. A lattice without the cache stream has nothing to move.
func MoveLegacy(ctx context.Context, js jetstream.JetStream, prefix string) (int, error) {
	cache, err := js.Stream(ctx, lattice.CacheStream(prefix))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("lattice cache %s: %w", lattice.CacheStream(prefix), err)
	}
	filter := lattice.LegacyCacheRevocationsFilter(prefix)
	info, err := cache.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return 0, fmt.Errorf("list %s in %s: %w", filter, lattice.CacheStream(prefix), err)
	}
	moved := 0
	var errs []error
	for subject := range info.State.Subjects {
		m, err := cache.GetLastMsgForSubject(ctx, subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // purged meanwhile
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("read %s: %w", subject, err))
			continue
		}
		key := subject[len(filter)-1:] // the signing key: what follows "revocations."
		if _, _, err := jswrite.Publish(ctx, js, lattice.Revocation(prefix, key), m.Data); err != nil {
			errs = append(errs, fmt.Errorf("copy %s: %w", subject, err))
			continue
		}
		if err := cache.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
			errs = append(errs, fmt.Errorf("purge %s from %s: %w", subject, lattice.CacheStream(prefix), err))
			continue
		}
		moved++
	}
	return moved, errors.Join(errs...)
}
