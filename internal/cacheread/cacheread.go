// Package cacheread reads link definitions and claims out of the lattice
// cache, the bucket LATTICEDATA_{prefix} when it exists, else the stream
// LATTICECACHE_{prefix} (docs/protocol.md §11), in one ordered
// pass. It exists so that lattice data of any size reaches whoever needs it
// (`latticed ctl get links`, the supervisor handing a provider its links):
// a control reply must fit one NATS message, a stream read has no such
// limit.
package cacheread

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/latticed/latticed/lattice"
)

// ErrUnavailable means the lattice cache cannot be read at all: no
// JetStream, no stream, or no right to read it. Callers may fall back to
// asking a host; any other error means the read started and failed.
var ErrUnavailable = errors.New("lattice cache unavailable")

// DefaultIdle is how long a read waits for the next entry before it gives
// up. The stream sends entries back to back, so a long gap means the server
// or the connection is gone, not that the data is large.
const DefaultIdle = 5 * time.Second

// ProviderLinksWait bounds how long a provider's start waits for its link
// definitions (retrying reads of the cache) before the start fails: a
// provider never starts with a partial set. A launch is answered only after
// that, so whoever waits for the answer (ctlclient.LaunchWait) waits longer.
const ProviderLinksWait = 20 * time.Second

// pullBatch is how many entries the server may send ahead of the decoder:
// large enough that 100,000 entries take few round trips, small enough
// (about 1 MB of link JSON) to bound the client's buffer.
const pullBatch = 4096

// entryKind is what a read looks for.
type entryKind int

const (
	kindLinks entryKind = iota
	kindClaims
)

// Skipped is a cache entry that did not decode; the read goes on without it.
type Skipped struct {
	Subject string
	Err     error
}

// Reader reads one lattice's cache.
type Reader struct {
	JS     jetstream.JetStream
	Prefix string
	// Idle bounds the wait for each next entry (DefaultIdle when zero).
	Idle time.Duration
	// OnSkipped, when set, hears about every entry that did not decode.
	OnSkipped func(Skipped)
}

// New returns a Reader on nc for the lattice prefix, in JetStream domain
// domain ("" for none), as the hosts of that lattice use it.
func New(nc *nats.Conn, domain, prefix string) (*Reader, error) {
	var js jetstream.JetStream
	var err error
	if domain != "" {
		js, err = jetstream.NewWithDomain(nc, domain)
	} else {
		js, err = jetstream.New(nc)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return &Reader{JS: js, Prefix: prefix}, nil
}

// Links returns every live link definition, sorted by id. Tombstones
// (deleted: true) remove their link; entries that do not decode or
// normalize are skipped (OnSkipped).
func (r *Reader) Links(ctx context.Context) ([]lattice.LinkDefinition, error) {
	return r.links(ctx, nil, func(lattice.LinkDefinition) bool { return true })
}

// LinksOf returns the live link definitions of one provider instance
// (provider key and link name), sorted by id: what the provider gets in
// HostData. It reads every entry as Links does, but decodes only those
// that mention the provider's key, so its cost stays close to the bare
// read whatever the rest of the lattice holds.
func (r *Reader) LinksOf(ctx context.Context, providerKey, linkName string) ([]lattice.LinkDefinition, error) {
	key := []byte(providerKey)
	return r.links(ctx, func(data []byte) bool { return bytes.Contains(data, key) }, func(ld lattice.LinkDefinition) bool {
		return ld.ProviderID == providerKey && ld.LinkName == linkName
	})
}

// links reads the link entries; mention, when set, is a cheap test on the
// raw entry that must hold for the entry to matter, and keep chooses among
// the decoded links.
func (r *Reader) links(ctx context.Context, mention func([]byte) bool, keep func(lattice.LinkDefinition) bool) ([]lattice.LinkDefinition, error) {
	bySubject := map[string]lattice.LinkDefinition{}
	err := r.read(ctx, kindLinks, func(subject string, data []byte, deleted bool) {
		if deleted || (mention != nil && !mention(data)) {
			// A newer entry of a subject seen earlier in this read
			// replaces it, even when it no longer concerns the caller.
			delete(bySubject, subject)
			return
		}
		var ld lattice.LinkDefinition
		if err := json.Unmarshal(data, &ld); err != nil {
			r.skip(subject, err)
			return
		}
		if ld.Deleted {
			delete(bySubject, subject)
			return
		}
		if err := ld.Normalize(); err != nil {
			r.skip(subject, err)
			return
		}
		if !keep(ld) {
			delete(bySubject, subject)
			return
		}
		bySubject[subject] = ld
	})
	if err != nil {
		return nil, err
	}
	out := make([]lattice.LinkDefinition, 0, len(bySubject))
	for _, ld := range bySubject {
		out = append(out, ld)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Claims returns the claims of every actor and provider in the cache,
// sorted by subject.
func (r *Reader) Claims(ctx context.Context) ([]lattice.CachedClaims, error) {
	bySubject := map[string]lattice.CachedClaims{}
	err := r.read(ctx, kindClaims, func(subject string, data []byte, deleted bool) {
		if deleted {
			delete(bySubject, subject)
			return
		}
		var cl lattice.CachedClaims
		if err := json.Unmarshal(data, &cl); err != nil {
			r.skip(subject, err)
			return
		}
		if cl.Subject == "" {
			r.skip(subject, errors.New("claims without a subject (sub)"))
			return
		}
		bySubject[subject] = cl
	})
	if err != nil {
		return nil, err
	}
	out := make([]lattice.CachedClaims, 0, len(bySubject))
	for _, cl := range bySubject {
		out = append(out, cl)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Subject < out[j].Subject })
	return out, nil
}

func (r *Reader) skip(subject string, err error) {
	if r.OnSkipped != nil {
		r.OnSkipped(Skipped{Subject: subject, Err: err})
	}
}

// read passes the last entry of every subject matching filter to each, in
// stream order, and returns once it has seen all of them: an ordered
// consumer delivering the last message per subject, read until the
// server says nothing is pending. Entries written meanwhile may be seen
// too; each replaces what its subject had.
//
// It reads the bucket LATTICEDATA_{prefix} when it exists (the hosts of a
// lattice with a wasmCloud 0.60+ host, or with LATTICED_CACHE=kv, keep the
// cache there; docs/protocol.md §11.2), else the stream; deleted is true
// for a bucket key's delete.
func (r *Reader) read(ctx context.Context, kind entryKind, each func(subject string, data []byte, deleted bool)) error {
	idle := r.Idle
	if idle <= 0 {
		idle = DefaultIdle
	}
	cctx, cancel := context.WithTimeout(ctx, idle)
	stream, filter, keyPrefix := lattice.CacheStream(r.Prefix), lattice.CacheLinkdefsFilter(r.Prefix), ""
	if kind == kindClaims {
		filter = lattice.CacheClaimsFilter(r.Prefix)
	}
	if _, err := r.JS.Stream(cctx, lattice.DataStream(r.Prefix)); err == nil {
		// Key-value filters match whole tokens only: read every key, keep one type.
		stream, filter, keyPrefix = lattice.DataStream(r.Prefix), lattice.DataSubjects(r.Prefix), lattice.DataLinkdefPrefix
		if kind == kindClaims {
			keyPrefix = lattice.DataClaimsPrefix
		}
		keyPrefix = strings.TrimSuffix(filter, ">") + keyPrefix
	}
	cons, err := r.JS.OrderedConsumer(cctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
		// A reader that dies leaves its consumer behind; the server
		// removes it after this long without a pull.
		InactiveThreshold: 30 * time.Second,
	})
	cancel()
	if err != nil {
		return unavailable(stream, err)
	}
	defer r.deleteConsumer(cons, stream)
	info := cons.CachedInfo()
	if info == nil || info.NumPending == 0 {
		return nil
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(pullBatch))
	if err != nil {
		return fmt.Errorf("read lattice cache %s: %w", stream, err)
	}
	defer it.Stop()
	for {
		nctx, cancel := context.WithTimeout(ctx, idle)
		msg, err := it.Next(jetstream.NextContext(nctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("read lattice cache %s: %w", stream, ctx.Err())
			}
			return fmt.Errorf("read lattice cache %s: no entry within %s (server or connection lost?): %w", stream, idle, err)
		}
		if keyPrefix == "" {
			each(msg.Subject(), msg.Data(), false)
		} else if strings.HasPrefix(msg.Subject(), keyPrefix) {
			op := msg.Headers().Get(lattice.KVOperationHeader)
			each(msg.Subject(), msg.Data(), op == lattice.KVOperationPurge || op == lattice.KVOperationDel)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("read lattice cache %s: entry %s without JetStream metadata: %w", stream, msg.Subject(), err)
		}
		if meta.NumPending == 0 {
			return nil
		}
	}
}

// deleteConsumer removes the reader's consumer now rather than after its
// inactivity threshold; failing that is harmless.
func (r *Reader) deleteConsumer(cons jetstream.Consumer, stream string) {
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = r.JS.DeleteConsumer(ctx, stream, info.Name)
}

// unavailable explains why the stream could not be opened. Every such
// failure (no stream, no JetStream, no right to create a consumer, no
// answer) means the same to a caller: there is no cache to read here.
func unavailable(stream string, err error) error {
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("%w: stream %s does not exist (no host with JetStream has run in this lattice)", ErrUnavailable, stream)
	}
	return fmt.Errorf("%w: stream %s: %v", ErrUnavailable, stream, err)
}
