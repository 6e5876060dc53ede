package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/jswrite"
	"github.com/latticed/latticed/internal/revstore"
	"github.com/latticed/latticed/lattice"
)

// The lattice cache as wasmCloud 0.60 and later keep it: the key-value
// bucket LATTICEDATA_{prefix} (docs/protocol.md §11.2). This file holds what
// differs from the stream form: the bucket's configuration, its keys and
// deletes, the migration of a LATTICECACHE stream into it, and the switch
// of a host in auto mode once the bucket appears.

// rollupHdr makes a purge replace every earlier message of its key.
const rollupHdr = "Nats-Rollup"

// dataMigrationQuiet ends a migration's read of the stream as wasmCloud's
// does: once nothing arrived for this long.
const dataMigrationQuiet = 200 * time.Millisecond

// dataPoll is how often a host in auto mode, on the stream, looks whether
// the bucket appeared (a wasmCloud 0.60+ host started beside it).
const dataPoll = 2 * time.Second

// dataClaims is a CLAIMS_ value: wasmCloud 0.60+ writes contract_id
// always ("" for actors), where the stream form omits it for actors.
type dataClaims struct {
	lattice.CachedClaims
	ContractID string `json:"contract_id"`
}

// dataBucketExists reports whether LATTICEDATA_{prefix} exists: a
// wasmCloud 0.60+ host makes it at its start, before anything else.
func dataBucketExists(ctx context.Context, js jetstream.JetStream, prefix string) (bool, error) {
	_, err := js.Stream(ctx, lattice.DataStream(prefix))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("lattice data bucket %s: %w", lattice.DataBucket(prefix), err)
	}
	return true, nil
}

// openData ensures the bucket exists, copies a LATTICECACHE stream into it
// (migrateStream) and follows it.
func (c *latticeCache) openData(ctx context.Context, replicas int) error {
	name := lattice.DataStream(c.prefix)
	s, err := c.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = c.js.CreateStream(ctx, revstore.BucketStream(lattice.DataBucket(c.prefix), replicas))
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = c.js.Stream(ctx, name) // a peer made it meanwhile
		}
	}
	if err != nil {
		return fmt.Errorf("lattice data bucket %s: %w", lattice.DataBucket(c.prefix), err)
	}
	if err := c.migrateStream(ctx); err != nil {
		return err
	}
	return c.follow(ctx, s, name, lattice.DataSubjects(c.prefix))
}

// migrateStream copies LATTICECACHE_{prefix} into the bucket the way a
// wasmCloud 0.60 host does (claims unchanged, link definitions under their
// recomputed id unless tombstoned, reference maps keyed by their oci_url),
// with two differences that keep data other hosts still read: it never
// deletes the stream (a host in stream mode may still be using it; a
// wasmCloud 0.60+ host deletes it when it starts, as it always does), and
// it writes a key only when the bucket has none (not even a delete), so a
// stream left behind cannot bring back what the bucket since changed.
func (c *latticeCache) migrateStream(ctx context.Context) error {
	name := lattice.CacheStream(c.prefix)
	s, err := c.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("lattice cache stream %s: %w", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("lattice cache stream %s: %w", name, err)
	}
	if info.State.Msgs == 0 {
		return nil
	}
	cons, err := c.js.OrderedConsumer(ctx, name, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{lattice.CacheSubjects(c.prefix)},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return fmt.Errorf("migrate %s: %w", name, err)
	}
	copied := 0
	for {
		batch, err := cons.Fetch(256, jetstream.FetchMaxWait(dataMigrationQuiet))
		if err != nil {
			return fmt.Errorf("migrate %s: %w", name, err)
		}
		n, last := 0, false
		for m := range batch.Messages() {
			n++
			if ok, err := c.migrateEntry(ctx, m.Subject(), m.Data()); err != nil {
				return fmt.Errorf("migrate %s: %w", m.Subject(), err)
			} else if ok {
				copied++
			}
			if meta, err := m.Metadata(); err == nil && meta.NumPending == 0 {
				last = true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("migrate %s: %w", name, err)
		}
		if n == 0 || last {
			break
		}
	}
	if copied > 0 {
		c.log.Info("lattice cache stream copied into the lattice data bucket", "from", name, "to", lattice.DataBucket(c.prefix), "entries", copied)
	}
	return nil
}

// migrateEntry copies one stream entry; ok false when it copied nothing.
// Entries of another key type are skipped (wasmCloud 0.60-0.63 crash on
// them; latticed never writes them there, docs/protocol.md §11.3).
func (c *latticeCache) migrateEntry(ctx context.Context, subject string, data []byte) (bool, error) {
	rest, _ := strings.CutPrefix(subject, strings.TrimSuffix(lattice.CacheSubjects(c.prefix), ">"))
	kind, key, _ := strings.Cut(rest, ".")
	var target string
	var value []byte
	switch kind {
	case "claims":
		target, value = lattice.DataClaims(c.prefix, key), data
	case "linkdefs":
		var ld lattice.LinkDefinition
		if err := json.Unmarshal(data, &ld); err != nil || ld.Deleted {
			return false, nil
		}
		if err := ld.Normalize(); err != nil {
			c.log.Warn("not migrating a bad link definition", "subject", subject, "err", err)
			return false, nil
		}
		target = lattice.DataLinkdef(c.prefix, ld.ID)
		value, _ = json.Marshal(ld)
	case "refmap":
		var rm RefMap
		if err := json.Unmarshal(data, &rm); err != nil || rm.OCIURL == "" {
			return false, nil
		}
		target, value = lattice.DataRefmap(c.prefix, rm.OCIURL), data
	default:
		c.log.Warn("not migrating a lattice cache entry of a type wasmCloud does not know", "subject", subject)
		return false, nil
	}
	return c.create(ctx, target, value)
}

// create writes value under subject unless the bucket has that key (or a
// delete of it); ok reports whether it wrote.
func (c *latticeCache) create(ctx context.Context, subject string, value []byte) (bool, error) {
	_, _, err := jswrite.PublishMsg(ctx, c.js, &nats.Msg{Subject: subject, Data: value}, jetstream.WithExpectLastSequencePerSubject(0))
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
		return false, nil
	}
	return err == nil, err
}

// purge deletes a key the way wasmCloud does (and `nats kv purge`).
func (c *latticeCache) purge(ctx context.Context, subject string) error {
	msg := nats.NewMsg(subject)
	msg.Header.Set(lattice.KVOperationHeader, lattice.KVOperationPurge)
	msg.Header.Set(rollupHdr, "sub")
	if _, _, err := jswrite.PublishMsg(ctx, c.js, msg); err != nil {
		return fmt.Errorf("purge lattice data %s: %w", subject, err)
	}
	return nil
}

// applyData folds one bucket entry into the host's state, as a wasmCloud
// host's watcher does: deletes of links by the key's id, other deletes and
// unknown keys ignored.
func (c *latticeCache) applyData(m jetstream.Msg) {
	key, ok := strings.CutPrefix(m.Subject(), strings.TrimSuffix(lattice.DataSubjects(c.prefix), ">"))
	if !ok || strings.Contains(key, ".") {
		return
	}
	op := m.Headers().Get(lattice.KVOperationHeader)
	deleted := op == lattice.KVOperationPurge || op == lattice.KVOperationDel
	var err error
	switch {
	case strings.HasPrefix(key, lattice.DataLinkdefPrefix):
		if deleted {
			c.state.delLink(strings.TrimPrefix(key, lattice.DataLinkdefPrefix))
			break
		}
		var ld lattice.LinkDefinition
		if err = json.Unmarshal(m.Data(), &ld); err == nil {
			err = ld.Normalize()
		}
		if err == nil {
			c.state.putLink(ld)
		}
	case strings.HasPrefix(key, lattice.DataClaimsPrefix):
		if deleted {
			break
		}
		var cl lattice.CachedClaims
		if err = json.Unmarshal(m.Data(), &cl); err == nil && cl.Subject != "" {
			c.state.putClaims(cl)
		}
	case strings.HasPrefix(key, lattice.DataRefmapPrefix):
		if deleted {
			break
		}
		var rm RefMap
		if err = json.Unmarshal(m.Data(), &rm); err == nil && rm.OCIURL != "" {
			c.state.putRefMap(rm)
		}
	}
	if err != nil {
		c.log.Warn("skipping bad lattice data entry", "key", key, "err", err)
	}
}

// backfill writes what the host knows into the bucket, for each key the
// bucket lacks: what it or its peers wrote to the stream after a wasmCloud
// host copied the stream and before this host switched.
func (c *latticeCache) backfill(ctx context.Context) error {
	var errs []error
	for _, ld := range c.state.allLinks() {
		b, _ := json.Marshal(ld)
		if _, err := c.create(ctx, lattice.DataLinkdef(c.prefix, ld.ID), b); err != nil {
			errs = append(errs, err)
		}
	}
	for _, cl := range c.state.allClaims() {
		b, _ := json.Marshal(dataClaims{CachedClaims: cl, ContractID: cl.ContractID})
		if _, err := c.create(ctx, lattice.DataClaims(c.prefix, cl.Subject), b); err != nil {
			errs = append(errs, err)
		}
	}
	c.state.mu.RLock()
	refs := make([]RefMap, 0, len(c.state.refmaps))
	for ref, key := range c.state.refmaps {
		refs = append(refs, RefMap{OCIURL: ref, PublicKey: key})
	}
	c.state.mu.RUnlock()
	for _, rm := range refs {
		b, _ := json.Marshal(rm)
		if _, err := c.create(ctx, lattice.DataRefmap(c.prefix, rm.OCIURL), b); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// watchForData is the auto mode's switch: while the host follows the
// stream, it looks for the bucket every dataPoll, and once it exists
// reopens the cache on it, writes what it knows there, and drops the stream
// consumer. It returns then, or when ctx ends.
func (h *Host) watchForData(ctx context.Context) {
	if h.opts.Cache != config.CacheAuto && h.opts.Cache != "" {
		return
	}
	t := time.NewTicker(dataPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		old := h.cache.Load()
		if old == nil {
			continue // not open yet: openCache decides when it opens
		}
		if old.kv {
			return
		}
		if ok, err := dataBucketExists(ctx, old.js, h.opts.LatticePrefix); err != nil || !ok {
			continue
		}
		if err := h.switchToData(ctx, old); err != nil {
			h.log.Warn("could not switch the lattice cache to the data bucket; trying again", "bucket", lattice.DataBucket(h.opts.LatticePrefix), "err", err)
			continue
		}
		return
	}
}

func (h *Host) switchToData(ctx context.Context, old *latticeCache) error {
	cctx, cancel := context.WithTimeout(ctx, replayTimeout)
	defer cancel()
	c, err := h.openCacheAs(cctx, old.js, true)
	if err != nil {
		return err
	}
	if err := c.backfill(cctx); err != nil {
		h.log.Warn("not everything this host knows was written to the lattice data bucket", "err", err)
	}
	h.cache.Store(c)
	old.close()
	h.log.Info("lattice cache switched to the data bucket a wasmCloud 0.60+ host uses", "bucket", lattice.DataBucket(h.opts.LatticePrefix))
	return nil
}
