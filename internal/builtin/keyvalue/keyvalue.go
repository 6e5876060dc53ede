// Package keyvalue is the built-in wasmcloud:keyvalue provider, backed by
// NATS JetStream key-value buckets on the lattice's own NATS server.
//
// Layout:
//
//   - one bucket per link, named by the link value "bucket", else
//     LATTICED_KV_{lattice prefix}_{link name} (characters outside
//     [A-Za-z0-9_-] become _). Actors linked under the same link name share
//     the default bucket, as actors sharing a Redis URL do with wasmCloud's
//     Redis provider; give each a "bucket" to keep them apart. Buckets use
//     file storage with history 1, so data survives provider and server
//     restarts; deleting a link keeps its data.
//   - one KV entry per key. Keys that are valid JetStream KV keys
//     ([-/_=.A-Za-z0-9], no leading or trailing dot) and do not start with
//     "=" are used as they are; any other key is stored as "=" followed by
//     its unpadded base64url, so every string is a distinct, valid key.
//   - strings are stored as they are, counters as decimal text, lists and
//     sets as JSON arrays of strings (sets sorted). They share one keyspace
//     as in Redis: Get of a list returns its JSON text, Del removes a list.
//     A list or set that becomes empty is deleted.
//
// Set with expires > 0 uses JetStream per-message TTL (nats-server 2.11+,
// the bucket is created with a limit-marker TTL); it replaces an existing
// value by deleting it and creating the key with its TTL, so a concurrent
// reader may briefly see the key absent. Increment, List* and Set* rewrite
// the entry without TTL, so they end a key's expiry. Increment, lists and
// sets change entries by revision-checked compare-and-set with retries, so
// concurrent updates are never lost.
package keyvalue

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/provider"
	"github.com/latticed/latticed/wire"
)

// BucketPrefix starts every default bucket name.
const BucketPrefix = "LATTICED_KV_"

// limitMarkerTTL is how long a bucket keeps the marker of an expired key.
const limitMarkerTTL = time.Minute

// Store is the keyvalue capability.
type Store struct {
	p      *provider.Provider // nil with UseJetStream
	prefix string
	link   string
	log    *slog.Logger
	m      *metrics.Metrics // nil: not counted (tests)

	mu      sync.RWMutex
	js      jetstream.JetStream // on jsConn
	jsConn  *nats.Conn
	buckets map[string]*bucket // by actor key
}

// bucket is an open KV bucket.
type bucket struct {
	name string
	kv   jetstream.KeyValue
	nc   *nats.Conn // kv's connection
	ttl  bool       // per-key TTL allowed
}

// New returns the capability, counting its operations on m (nil: not
// counted); internal/providermain runs it.
func New(m *metrics.Metrics) *Store {
	return &Store{buckets: map[string]*bucket{}, log: slog.Default(), m: m}
}

// Contract is wasmcloud:keyvalue.
func (s *Store) Contract() string { return wire.ContractKeyValue }

// Start opens JetStream on the provider's lattice connection (in HostData's
// JetStream domain, if any).
func (s *Store) Start(_ context.Context, p *provider.Provider) error {
	s.p, s.prefix, s.link, s.log = p, p.LatticePrefix(), p.LinkName(), p.Logger()
	if _, err := s.jetStream(p.Conn()); err != nil {
		return err
	}
	return nil
}

// jetStream is a JetStream context on nc (nil: the one UseJetStream set).
// A credential renewal moves the provider to a new connection, so the
// context follows the connection it is asked for.
func (s *Store) jetStream(nc *nats.Conn) (jetstream.JetStream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if nc == nil || nc == s.jsConn || s.p == nil {
		if s.js == nil {
			return nil, errors.New("key-value provider not started")
		}
		return s.js, nil
	}
	var js jetstream.JetStream
	var err error
	if d := s.p.JSDomain(); d != "" {
		js, err = jetstream.NewWithDomain(nc, d)
	} else {
		js, err = jetstream.New(nc)
	}
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	s.js, s.jsConn = js, nc
	return js, nil
}

// conn is the provider's current lattice connection (nil with UseJetStream).
func (s *Store) conn() *nats.Conn {
	if s.p == nil {
		return nil
	}
	return s.p.Conn()
}

// UseJetStream sets the JetStream context directly (tests; Start does it).
func (s *Store) UseJetStream(js jetstream.JetStream, prefix, link string, log *slog.Logger) {
	s.js, s.prefix, s.link, s.log = js, prefix, link, log
}

// BucketName is the bucket a link uses: values["bucket"] (any case of the
// key), else the default for the lattice prefix and link name.
func BucketName(values map[string]string, prefix, link string) (string, error) {
	for k, v := range values {
		if strings.EqualFold(k, "bucket") {
			if !validBucket.MatchString(v) {
				return "", fmt.Errorf("bucket %q: want letters, digits, _ and - only", v)
			}
			return v, nil
		}
	}
	return BucketPrefix + sanitize(prefix) + "_" + sanitize(link), nil
}

var validBucket = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 128 && (r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return r
		}
		return '_'
	}, s)
}

// PutLink opens (creating if needed) the link's bucket.
func (s *Store) PutLink(ctx context.Context, ld lattice.LinkDefinition) error {
	name, err := BucketName(ld.Values, s.prefix, s.link)
	if err != nil {
		return err
	}
	b, err := s.awaitBucket(ctx, name)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.buckets[ld.ActorID] = b
	s.mu.Unlock()
	s.log.Info("key-value bucket open", "actor", ld.ActorID, "bucket", name, "key_ttl", b.ttl)
	return nil
}

// GrantWait bounds how long PutLink waits for access to a link's bucket.
// Under latticed the supervisor creates the bucket when it sees the link and
// then re-mints this provider's user with access to it (docs/security.md);
// the provider receives the link and the new credentials independently, so
// the link may come first.
const GrantWait = 30 * time.Second

// awaitBucket opens the bucket, retrying while access is refused (no
// answer: a permission violation) until GrantWait or ctx ends.
func (s *Store) awaitBucket(ctx context.Context, name string) (*bucket, error) {
	ctx, cancel := context.WithTimeout(ctx, GrantWait)
	defer cancel()
	delay := 50 * time.Millisecond
	for {
		var b *bucket
		err := errNotGranted
		if s.p == nil || s.p.MayPublish(s.apiPrefix()+".STREAM.INFO.KV_"+name) {
			actx, acancel := context.WithTimeout(ctx, 2*time.Second)
			b, err = s.open(actx, s.conn(), name)
			acancel()
		}
		if err == nil {
			return b, nil
		}
		if !awaitable(err) {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w (waited %s for access to it)", err, GrantWait)
		}
		s.log.Debug("key-value bucket not accessible yet; waiting for the grant", "bucket", name, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (waited %s for access to it)", err, GrantWait)
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

var errNotGranted = errors.New("not granted to this provider's NATS user (yet)")

// apiPrefix is the JetStream API prefix the provider uses.
func (s *Store) apiPrefix() string {
	if d := s.p.JSDomain(); d != "" {
		return "$JS." + d + ".API"
	}
	return "$JS.API"
}

// awaitable reports whether err may be a grant that has not arrived: a
// refused JetStream API request gets no answer (the server drops it and
// reports a permissions violation), so it times out; and the grant arrives
// as a move to a new connection, which closes the one the attempt used.
func awaitable(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrBucketNotFound) ||
		errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, errNotGranted)
}

// open opens the bucket on nc. A bucket that does not exist is created
// (CreateBucket) where this provider may do so: with a wasmCloud host, or on
// an open server. Under latticed it may not (the supervisor creates the
// buckets), and a bucket it was granted exists.
func (s *Store) open(ctx context.Context, nc *nats.Conn, name string) (*bucket, error) {
	js, err := s.jetStream(nc)
	if err != nil {
		return nil, err
	}
	kv, err := js.KeyValue(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		var noTTL bool
		kv, noTTL, err = CreateBucket(ctx, js, name)
		if noTTL {
			s.log.Warn("this NATS server has no per-message TTL (nats-server 2.11+); Set with expiry will fail", "bucket", name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open key-value bucket %s: %w", name, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s status: %w", name, err)
	}
	return &bucket{name: name, kv: kv, nc: nc, ttl: st.LimitMarkerTTL() > 0}, nil
}

// CreateBucket creates the bucket the key-value provider keeps a link's
// data in (file storage, one revision per key, per-key TTL where the server
// has it), or opens it when it exists. noTTL reports a server without
// per-message TTL (before nats-server 2.11). The supervisor creates buckets
// with it, so provider and supervisor agree on the configuration.
func CreateBucket(ctx context.Context, js jetstream.JetStream, name string) (kv jetstream.KeyValue, noTTL bool, err error) {
	cfg := jetstream.KeyValueConfig{
		Bucket: name, Description: "latticed wasmcloud:keyvalue store", History: 1,
		Storage: jetstream.FileStorage, LimitMarkerTTL: limitMarkerTTL,
	}
	kv, err = js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrLimitMarkerTTLNotSupported) {
		noTTL = true
		cfg.LimitMarkerTTL = 0
		kv, err = js.CreateKeyValue(ctx, cfg)
	}
	if errors.Is(err, jetstream.ErrBucketExists) { // created concurrently, or with another configuration
		kv, err = js.KeyValue(ctx, name)
	}
	return kv, noTTL, err
}

// Health reports whether JetStream answers.
func (s *Store) Health(ctx context.Context) error {
	js, err := s.jetStream(s.conn())
	if err != nil {
		return err
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("jetstream unavailable: %w", err)
	}
	return nil
}

// DeleteLink forgets the actor's bucket; its data stays.
func (s *Store) DeleteLink(_ context.Context, ld lattice.LinkDefinition) error {
	s.mu.Lock()
	delete(s.buckets, ld.ActorID)
	s.mu.Unlock()
	return nil
}

// Close has nothing to release: buckets live on the server.
func (s *Store) Close(context.Context) error {
	s.mu.Lock()
	s.buckets = map[string]*bucket{}
	s.mu.Unlock()
	return nil
}

// Handle runs one KeyValue operation for a linked actor.
func (s *Store) Handle(ctx context.Context, call provider.Call) (out []byte, err error) {
	shape, ok := opShapes[call.Operation]
	if !ok {
		return nil, provider.UnknownOperation(wire.ContractKeyValue, call.Operation)
	}
	if s.m != nil { // known operations only: a bounded label
		defer func() { s.m.KVOperations.WithLabelValues(call.Operation, metrics.Result(err)).Inc() }()
	}
	a, err := decodeArgs(shape, call.Payload)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", call.Operation, err)
	}
	s.mu.RLock()
	b := s.buckets[call.Actor]
	s.mu.RUnlock()
	if b == nil {
		return nil, fmt.Errorf("%s: actor %s has no open bucket", call.Operation, call.Actor)
	}
	if call.Conn != nil && call.Conn != b.nc && s.p != nil {
		// The provider moved to a new connection: use the bucket there.
		nb, err := s.open(ctx, call.Conn, b.name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", call.Operation, err)
		}
		s.mu.Lock()
		if s.buckets[call.Actor] == b {
			s.buckets[call.Actor] = nb
		}
		s.mu.Unlock()
		b = nb
	}
	result, err := b.do(ctx, call.Operation, a)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", call.Operation, err)
	}
	if result == nil {
		return nil, nil // Set returns nothing
	}
	return encodeResult(result)
}

// encodeResult writes an operation's result in the bytes wasmCloud's
// reflection encoder (compact integers, structs as maps) writes for it.
func encodeResult(v any) ([]byte, error) {
	w := wire.NewWriter(64)
	switch v := v.(type) {
	case *wire.KVGetResponse:
		return v.Encode(), nil
	case bool:
		w.Bool(v)
	case int32:
		w.Int(int64(v))
	case uint32:
		w.Uint(uint64(v))
	case []string:
		if v == nil {
			w.Nil()
			break
		}
		w.ArrayHeader(len(v))
		for _, s := range v {
			w.Str(s)
		}
	default:
		return nil, fmt.Errorf("encode result: no wire form for %T", v)
	}
	return w.Bytes(), nil
}

// do runs a decoded operation and returns the value to encode (nil: none).
func (b *bucket) do(ctx context.Context, op string, a args) (any, error) {
	switch op {
	case wire.OpKVGet:
		e, err := b.get(ctx, a.key)
		if err != nil || e == nil {
			return &wire.KVGetResponse{}, err
		}
		return &wire.KVGetResponse{Value: string(e.Value()), Exists: true}, nil
	case wire.OpKVContains:
		e, err := b.get(ctx, a.key)
		return e != nil, err
	case wire.OpKVSet:
		return nil, b.set(ctx, a.key, a.value, a.expires)
	case wire.OpKVDel, wire.OpKVListClear, wire.OpKVSetClear:
		return b.del(ctx, a.key)
	case wire.OpKVIncrement:
		return b.increment(ctx, a.key, a.delta)
	case wire.OpKVListAdd:
		var n uint32
		err := b.update(ctx, a.key, "list", func(l []string) []string {
			l = append(l, a.value)
			n = uint32(len(l))
			return l
		})
		return n, err
	case wire.OpKVListDel:
		var found bool
		err := b.update(ctx, a.key, "list", func(l []string) []string {
			i := slices.Index(l, a.value)
			if found = i >= 0; found {
				l = slices.Delete(l, i, i+1)
			}
			return l
		})
		return found, err
	case wire.OpKVListRange:
		l, err := b.strings(ctx, a.key, "list")
		return listRange(l, a.start, a.stop), err
	case wire.OpKVSetAdd, wire.OpKVSetDel:
		var changed uint32
		err := b.update(ctx, a.key, "set", func(set []string) []string {
			i, in := slices.BinarySearch(set, a.value)
			switch {
			case op == wire.OpKVSetAdd && !in:
				set, changed = slices.Insert(set, i, a.value), 1
			case op == wire.OpKVSetDel && in:
				set, changed = slices.Delete(set, i, i+1), 1
			}
			return set
		})
		return changed, err
	case wire.OpKVSetQuery:
		set, err := b.strings(ctx, a.key, "set")
		return orEmpty(set), err
	case wire.OpKVSetUnion, wire.OpKVSetIntersect:
		return b.combine(ctx, a.names, op == wire.OpKVSetIntersect)
	}
	return nil, provider.UnknownOperation(wire.ContractKeyValue, op)
}

// StoreKey maps an actor's key to a valid, distinct JetStream KV key.
func StoreKey(key string) (string, error) {
	if key == "" {
		return "", errors.New("key must not be empty")
	}
	if plainKey.MatchString(key) && key[0] != '=' {
		return key, nil
	}
	return "=" + base64.RawURLEncoding.EncodeToString([]byte(key)), nil
}

var plainKey = regexp.MustCompile(`^[-/_=a-zA-Z0-9]+(\.[-/_=a-zA-Z0-9]+)*$`)

// get returns the live entry of key, or nil when there is none.
func (b *bucket) get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	k, err := StoreKey(key)
	if err != nil {
		return nil, err
	}
	e, err := b.kv.Get(ctx, k)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", b.name, err)
	}
	return e, nil
}

func (b *bucket) set(ctx context.Context, key, value string, expires uint32) error {
	k, err := StoreKey(key)
	if err != nil {
		return err
	}
	if expires == 0 {
		_, err := b.kv.Put(ctx, k, []byte(value))
		return err
	}
	if !b.ttl {
		return fmt.Errorf("bucket %s does not allow per-key expiry (it needs nats-server 2.11+ and a bucket created with a limit-marker TTL)", b.name)
	}
	ttl := time.Duration(expires) * time.Second
	return retry(ctx, func() (bool, error) {
		_, err := b.kv.Create(ctx, k, []byte(value), jetstream.KeyTTL(ttl))
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return true, err
		}
		// A TTL can only be given when a key is created: delete the current
		// value (if it is still the one we saw) and create again.
		e, err := b.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return false, nil
		}
		if err != nil {
			return true, err
		}
		err = b.kv.Delete(ctx, k, jetstream.LastRevision(e.Revision()))
		return false, ignoreConflict(err)
	})
}

// del deletes key and reports whether it existed.
func (b *bucket) del(ctx context.Context, key string) (bool, error) {
	k, err := StoreKey(key)
	if err != nil {
		return false, err
	}
	var existed bool
	err = retry(ctx, func() (bool, error) {
		e, err := b.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			existed = false
			return true, nil
		}
		if err != nil {
			return true, err
		}
		err = b.kv.Delete(ctx, k, jetstream.LastRevision(e.Revision()))
		if isConflict(err) {
			return false, nil
		}
		existed = true
		return true, err
	})
	return existed, err
}

func (b *bucket) increment(ctx context.Context, key string, delta int32) (int32, error) {
	k, err := StoreKey(key)
	if err != nil {
		return 0, err
	}
	var result int32
	err = retry(ctx, func() (bool, error) {
		e, err := b.kv.Get(ctx, k)
		var cur int64
		var rev uint64
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return true, err
		default:
			rev = e.Revision()
			if cur, err = strconv.ParseInt(strings.TrimSpace(string(e.Value())), 10, 32); err != nil {
				return true, fmt.Errorf("value at key %q is not an integer", key)
			}
		}
		next := cur + int64(delta)
		if next < -1<<31 || next > 1<<31-1 {
			return true, fmt.Errorf("incrementing key %q by %d overflows an i32", key, delta)
		}
		val := []byte(strconv.FormatInt(next, 10))
		if rev == 0 {
			_, err = b.kv.Create(ctx, k, val)
		} else {
			_, err = b.kv.Update(ctx, k, val, rev)
		}
		if isConflict(err) {
			return false, nil
		}
		result = int32(next)
		return true, err
	})
	return result, err
}

// strings reads a list or set ([] when absent).
func (b *bucket) strings(ctx context.Context, key, kind string) ([]string, error) {
	e, err := b.get(ctx, key)
	if err != nil || e == nil {
		return nil, err
	}
	return decodeList(e.Value(), key, kind)
}

func decodeList(v []byte, key, kind string) ([]string, error) {
	var l []string
	if err := json.Unmarshal(v, &l); err != nil {
		return nil, fmt.Errorf("value at key %q is not a %s", key, kind)
	}
	return l, nil
}

// update applies fn to the list or set at key by compare-and-set, retrying
// on conflict. An empty result deletes the key.
func (b *bucket) update(ctx context.Context, key, kind string, fn func([]string) []string) error {
	k, err := StoreKey(key)
	if err != nil {
		return err
	}
	return retry(ctx, func() (bool, error) {
		e, err := b.kv.Get(ctx, k)
		var cur []string
		var rev uint64
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return true, err
		default:
			rev = e.Revision()
			if cur, err = decodeList(e.Value(), key, kind); err != nil {
				return true, err
			}
		}
		next := fn(cur)
		switch {
		case len(next) == 0 && rev == 0:
			return true, nil
		case len(next) == 0:
			err = b.kv.Delete(ctx, k, jetstream.LastRevision(rev))
		default:
			val, merr := json.Marshal(next)
			if merr != nil {
				return true, merr
			}
			if rev == 0 {
				_, err = b.kv.Create(ctx, k, val)
			} else {
				_, err = b.kv.Update(ctx, k, val, rev)
			}
		}
		if isConflict(err) {
			return false, nil
		}
		return true, err
	})
}

// combine is SetUnion or SetIntersection of the named sets.
func (b *bucket) combine(ctx context.Context, names []string, intersect bool) ([]string, error) {
	var acc []string
	for i, name := range names {
		set, err := b.strings(ctx, name, "set")
		if err != nil {
			return nil, err
		}
		switch {
		case i == 0:
			acc = slices.Clone(set)
			slices.Sort(acc)
		case intersect:
			acc = slices.DeleteFunc(acc, func(v string) bool { return !slices.Contains(set, v) })
		default:
			acc = append(acc, set...)
			slices.Sort(acc)
			acc = slices.Compact(acc)
		}
	}
	return orEmpty(acc), nil
}

// listRange is LRANGE: 0-based inclusive indices, negative ones count from
// the end, a stop beyond the end means the end.
func listRange(l []string, start, stop int32) []string {
	n := int64(len(l))
	s, e := int64(start), int64(stop)
	if s < 0 {
		s = max(n+s, 0)
	}
	if e < 0 {
		e = n + e
	}
	e = min(e, n-1)
	if s > e || s >= n {
		return []string{}
	}
	return slices.Clone(l[s : e+1])
}

func orEmpty(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// isConflict reports a failed compare-and-set: someone else wrote first.
func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return true
	}
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists)
}

func ignoreConflict(err error) error {
	if isConflict(err) {
		return nil
	}
	return err
}

// retry runs attempt until it reports done, with a short jittered backoff
// between attempts, until ctx ends.
func retry(ctx context.Context, attempt func() (done bool, err error)) error {
	wait := time.Millisecond
	for {
		done, err := attempt()
		if done || err != nil {
			return err
		}
		t := time.NewTimer(wait/2 + rand.N(wait))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("gave up after concurrent updates: %w", ctx.Err())
		case <-t.C:
		}
		wait = min(wait*2, 50*time.Millisecond)
	}
}
