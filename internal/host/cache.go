package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/jswrite"
	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/internal/revstore"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// replayTimeout bounds how long a starting host waits to replay the cache.
const replayTimeout = 15 * time.Second

// RefMap records which public key an artifact reference resolved to.
type RefMap struct {
	OCIURL    string `json:"oci_url"`
	PublicKey string `json:"public_key"`
}

// latticeCache keeps claims, link definitions and reference maps in the
// JetStream stream LATTICECACHE_{prefix} (docs/protocol.md §11). Every host replays
// it at start and follows it live, so all hosts answer get.claims/get.links
// alike and a new host knows what it never saw.
type latticeCache struct {
	js      jetstream.JetStream
	prefix  string
	kv      bool // the bucket LATTICEDATA_{prefix}, not the stream (latticedata.go)
	state   *latticeState
	issuers *trust.Issuers
	log     *slog.Logger
	cc      jetstream.ConsumeContext
	m       *metrics.Metrics

	replayOnce sync.Once
	replayed   chan struct{}

	revs         jetstream.ConsumeContext // the revocations bucket's consumer
	revsOnce     sync.Once
	revsReplayed chan struct{}
}

// openCache opens the lattice cache in the form LATTICED_CACHE asks for
// (docs/protocol.md §11): the stream LATTICECACHE_{prefix}, or the bucket
// LATTICEDATA_{prefix} of wasmCloud 0.60+; auto takes the bucket when it
// exists. A host whose NATS has no JetStream still runs, knowing only what
// it sees itself.
func (h *Host) openCache(ctx context.Context) (*latticeCache, error) {
	js, err := h.jetStream()
	if err != nil {
		return nil, err
	}
	kv := h.opts.Cache == config.CacheKV
	if h.opts.Cache == config.CacheAuto || h.opts.Cache == "" {
		if kv, err = dataBucketExists(ctx, js, h.opts.LatticePrefix); err != nil {
			return nil, err
		}
	}
	return h.openCacheAs(ctx, js, kv)
}

func (h *Host) jetStream() (jetstream.JetStream, error) {
	if h.opts.JSDomain != "" {
		return jetstream.NewWithDomain(h.opts.Ctl, h.opts.JSDomain)
	}
	return jetstream.New(h.opts.Ctl)
}

// openCacheAs opens the cache as the bucket (kv) or the stream, replays it
// and follows it, and follows the revocations bucket.
func (h *Host) openCacheAs(ctx context.Context, js jetstream.JetStream, kv bool) (*latticeCache, error) {
	c := &latticeCache{js: js, prefix: h.opts.LatticePrefix, kv: kv, state: h.state, issuers: h.issuers, log: h.log, m: h.m, replayed: make(chan struct{}), revsReplayed: make(chan struct{})}
	var err error
	if kv {
		err = c.openData(ctx, h.opts.CacheReplicas)
	} else {
		err = c.openStream(ctx, h.opts.CacheMemoryStorage, h.opts.CacheReplicas)
	}
	if err != nil {
		c.close()
		return nil, err
	}
	if err := c.followRevocations(ctx, h.opts.CacheReplicas); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// openStream ensures LATTICECACHE_{prefix} exists and follows it.
func (c *latticeCache) openStream(ctx context.Context, memory bool, replicas int) error {
	js := c.js
	name := lattice.CacheStream(c.prefix)
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		storage := jetstream.FileStorage
		if memory {
			storage = jetstream.MemoryStorage
		}
		s, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name: name, Subjects: []string{lattice.CacheSubjects(c.prefix)},
			Retention: jetstream.LimitsPolicy, MaxMsgsPerSubject: 1, Discard: jetstream.DiscardOld,
			Storage: storage, Replicas: max(replicas, 1), Duplicates: 2 * time.Minute,
		})
		// Another host may have created it meanwhile; use theirs (wasmCloud
		// hosts create it with memory storage, which we accept as it is).
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = js.Stream(ctx, name)
		}
	}
	if err != nil {
		return fmt.Errorf("lattice cache stream %s: %w", name, err)
	}
	return c.follow(ctx, s, name, lattice.CacheSubjects(c.prefix))
}

// follow replays stream (last message per subject) and keeps consuming it.
func (c *latticeCache) follow(ctx context.Context, s jetstream.Stream, name, filter string) error {
	c.countEntries()
	var err error
	c.cc, err = followLast(ctx, c.js, s, name, filter, c.apply, c.replayDone)
	if err != nil {
		return fmt.Errorf("lattice cache %s: %w", name, err)
	}
	return nil
}

// followLast delivers the last message of every subject of stream matching
// filter to apply, then every new one, until the returned consumer is
// stopped; replayed is called at once when the stream is empty (apply
// calls it on the last replayed message otherwise).
func followLast(ctx context.Context, js jetstream.JetStream, s jetstream.Stream, name, filter string, apply jetstream.MessageHandler, replayed func()) (jetstream.ConsumeContext, error) {
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	if info.State.Msgs == 0 {
		replayed()
	}
	cons, err := js.OrderedConsumer(ctx, name, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	cc, err := cons.Consume(apply)
	if err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	return cc, nil
}

func (c *latticeCache) replayDone() { c.replayOnce.Do(func() { close(c.replayed) }) }

func (c *latticeCache) close() {
	if c == nil {
		return
	}
	if c.cc != nil {
		c.cc.Stop()
	}
	if c.revs != nil {
		c.revs.Stop()
	}
}

// followRevocations replays and follows latticed's revocations bucket
// (lattice.RevocationsBucket), creating it when this host is the lattice's
// first. The supervisor writes it; the host only reads.
func (c *latticeCache) followRevocations(ctx context.Context, replicas int) error {
	s, err := revstore.Ensure(ctx, c.js, c.prefix, replicas)
	if err != nil {
		return err
	}
	c.revs, err = followLast(ctx, c.js, s, lattice.RevocationsStream(c.prefix), lattice.RevocationsSubjects(c.prefix), c.applyRevocation, c.revsReplayDone)
	if err != nil {
		return fmt.Errorf("revocations bucket %s: %w", lattice.RevocationsBucket(c.prefix), err)
	}
	return nil
}

func (c *latticeCache) revsReplayDone() { c.revsOnce.Do(func() { close(c.revsReplayed) }) }

// applyRevocation revokes one signing key. Purges (the supervisor's
// pruning of expired entries) carry no body and revoke nothing.
func (c *latticeCache) applyRevocation(m jetstream.Msg) {
	if meta, err := m.Metadata(); err == nil && meta.NumPending == 0 {
		defer c.revsReplayDone()
	}
	if len(m.Data()) == 0 {
		return
	}
	var rv lattice.DelegationRevocation
	if err := json.Unmarshal(m.Data(), &rv); err != nil || rv.SigningKey == "" {
		c.log.Warn("skipping bad signing-key revocation", "subject", m.Subject(), "err", err)
		return
	}
	c.issuers.Revoke(rv.SigningKey, rv.Until)
	c.log.Info("delegated signing key revoked", "signing_key", rv.SigningKey, "provider", rv.Provider.PublicKey, "instance", rv.InstanceID)
}

// apply folds one cache entry into the host's state. Bad entries are logged
// and skipped: one corrupt message must not stop the lattice.
func (c *latticeCache) apply(m jetstream.Msg) {
	if meta, err := m.Metadata(); err == nil && meta.NumPending == 0 {
		defer c.replayDone()
	}
	if c.kv {
		c.applyData(m)
		c.countEntries()
		return
	}
	rest, ok := strings.CutPrefix(m.Subject(), strings.TrimSuffix(lattice.CacheSubjects(c.prefix), ">"))
	kind, _, _ := strings.Cut(rest, ".")
	if !ok {
		return
	}
	var err error
	switch kind {
	case "claims":
		var cl lattice.CachedClaims
		if err = json.Unmarshal(m.Data(), &cl); err == nil && cl.Subject != "" {
			c.state.putClaims(cl)
		}
	case "linkdefs":
		var ld lattice.LinkDefinition
		if err = json.Unmarshal(m.Data(), &ld); err == nil {
			if ld.Deleted {
				c.state.delLink(ld.ID)
			} else if err = ld.Normalize(); err == nil {
				c.state.putLink(ld)
			}
		}
	case "refmap":
		var rm RefMap
		if err = json.Unmarshal(m.Data(), &rm); err == nil {
			c.state.putRefMap(rm)
		}
	}
	if err != nil {
		c.log.Warn("skipping bad lattice cache entry", "subject", m.Subject(), "err", err)
	}
	c.countEntries()
}

// countEntries sets latticed_lattice_cache_entries from what the host knows.
func (c *latticeCache) countEntries() {
	if c.m == nil {
		return
	}
	c.state.mu.RLock()
	claims, links, refmaps := len(c.state.claims), len(c.state.links), len(c.state.refmaps)
	c.state.mu.RUnlock()
	c.m.LatticeCacheEntries.WithLabelValues("claims").Set(float64(claims))
	c.m.LatticeCacheEntries.WithLabelValues("links").Set(float64(links))
	c.m.LatticeCacheEntries.WithLabelValues("refmaps").Set(float64(refmaps))
}

func (c *latticeCache) put(ctx context.Context, subject string, v any) error {
	if c == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	// A leader election of the cache stream is waited out within ctx;
	// every attempt carries one message id, so the entry is stored once.
	_, attempts, err := jswrite.Publish(ctx, c.js, subject, b)
	if err != nil {
		return fmt.Errorf("write lattice cache %s: %w", subject, err)
	}
	if attempts > 1 {
		c.log.Info("lattice cache write waited out a JetStream leader election", "subject", subject, "attempts", attempts)
	}
	return nil
}

// The writers below are methods on a cache that may not be open yet (a
// host whose JetStream was not ready at start, h.cache nil): they write
// nothing then, and the host writes what it runs once the cache opens
// (Host.writeRunningToCache).

func (c *latticeCache) putClaims(ctx context.Context, cl lattice.CachedClaims) error {
	if c == nil {
		return nil
	}
	if c.kv {
		return c.put(ctx, lattice.DataClaims(c.prefix, cl.Subject), dataClaims{CachedClaims: cl, ContractID: cl.ContractID})
	}
	return c.put(ctx, lattice.CacheClaims(c.prefix, cl.Subject), cl)
}

func (c *latticeCache) putLink(ctx context.Context, ld lattice.LinkDefinition) error {
	if c == nil {
		return nil
	}
	if c.kv {
		return c.put(ctx, lattice.DataLinkdef(c.prefix, ld.ID), ld)
	}
	return c.put(ctx, lattice.CacheLinkdef(c.prefix, ld.ID), ld)
}

// deleteLink tombstones the link in the stream (with one message per
// subject, the tombstone replaces it) and purges it from the bucket.
func (c *latticeCache) deleteLink(ctx context.Context, ld lattice.LinkDefinition) error {
	if c == nil {
		return nil
	}
	if c.kv {
		return c.purge(ctx, lattice.DataLinkdef(c.prefix, ld.ID))
	}
	ld.Deleted = true
	return c.put(ctx, lattice.CacheLinkdef(c.prefix, ld.ID), ld)
}

func (c *latticeCache) putRefMap(ctx context.Context, rm RefMap) error {
	if c == nil {
		return nil
	}
	if c.kv {
		return c.put(ctx, lattice.DataRefmap(c.prefix, rm.OCIURL), rm)
	}
	return c.put(ctx, lattice.CacheRefmap(c.prefix, rm.OCIURL), rm)
}
