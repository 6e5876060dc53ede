package trust

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"math/bits"
	"sync"
	"time"

	"github.com/latticed/latticed/lattice"
)

// InvocationClaims is the `wascap` metadata of an antiforgery token.
type InvocationClaims struct {
	TargetURL string `json:"target_url"`
	OriginURL string `json:"origin_url"`
	Hash      string `json:"hash"`
}

// NewInvocation builds and signs an invocation with the cluster key signer.
// hostID is the sending node's key (latticed sends its N… key).
func NewInvocation(signer *KeyPair, hostID string, origin, target lattice.Entity, operation string, msg []byte) (*lattice.Invocation, error) {
	return Signer{Key: signer}.NewInvocation(hostID, origin, target, operation, msg)
}

// NewInvocation builds and signs an invocation, attaching the delegation
// token when the signer has one.
func (s Signer) NewInvocation(hostID string, origin, target lattice.Entity, operation string, msg []byte) (*lattice.Invocation, error) {
	signer := s.Key
	inv := &lattice.Invocation{
		Origin: origin, Target: target, Operation: operation, Msg: msg,
		ID: newInvocationID(), HostID: hostID, ContentLength: uint64(len(msg)), Delegation: s.Delegation,
	}
	targetURL, originURL := inv.TargetURL(), origin.URL()
	// The claims and their metadata in one allocation: this runs on every call.
	cw := &struct {
		c Claims[InvocationClaims]
		w InvocationClaims
	}{
		c: Claims[InvocationClaims]{Subject: inv.ID},
		w: InvocationClaims{TargetURL: targetURL, OriginURL: originURL,
			Hash: lattice.InvocationHash(originURL, targetURL, operation, msg)},
	}
	cw.c.Wascap = &cw.w
	token, err := cw.c.Sign(signer)
	if err != nil {
		return nil, fmt.Errorf("sign invocation: %w", err)
	}
	inv.EncodedClaims = token
	return inv, nil
}

// newInvocationID is a random (version 4) UUID in its canonical form, as
// wasmCloud's invocation ids are: what uuid.NewString returns, in one
// allocation instead of two.
func newInvocationID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])  // never fails (crypto/rand: it crashes the program rather than return an error)
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // variant RFC 4122
	var out [36]byte
	hex.Encode(out[0:8], u[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], u[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], u[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], u[8:10])
	out[23] = '-'
	hex.Encode(out[24:], u[10:])
	return string(out[:])
}

// issuedAt is a helper for policies: the token's iat as a time.
func issuedAt(c *Claims[InvocationClaims]) time.Time { return time.Unix(c.IssuedAt, 0) }

// Issuers decides whether an incoming invocation may pass: signed by a
// trusted cluster issuer, body untampered, addressed here, fresh, not replayed.
// It is safe for concurrent use.
type Issuers struct {
	issuers map[string]struct{}
	skew    time.Duration
	replay  *ReplayGuard
	now     func() time.Time

	mu          sync.RWMutex               // read-mostly: every delegated invocation reads, revocations write
	delegations map[string]delegationEntry // verified delegation tokens
	revocations map[string]time.Time       // revoked signing key -> until

	// keys verifies the signatures of the keys that sign most invocations
	// (a cluster issuer, a provider instance's delegated key) with their
	// precomputed multiples: in half the time, with the same outcome.
	keys keyTables
}

// IssuersOption configures an Issuers.
type IssuersOption func(*Issuers)

// WithReplayGuard turns on latticed's replay protection: invocation ids are
// remembered for the guard's window and tokens issued longer ago are refused.
func WithReplayGuard(g *ReplayGuard) IssuersOption { return func(p *Issuers) { p.replay = g } }

// WithClockSkew tolerates clocks between nodes that disagree by up to d.
func WithClockSkew(d time.Duration) IssuersOption { return func(p *Issuers) { p.skew = d } }

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) IssuersOption { return func(p *Issuers) { p.now = now } }

// NewIssuers trusts the given cluster public keys.
func NewIssuers(issuers []string, opts ...IssuersOption) *Issuers {
	p := &Issuers{issuers: make(map[string]struct{}, len(issuers)), now: time.Now,
		delegations: map[string]delegationEntry{}, revocations: map[string]time.Time{}}
	for _, i := range issuers {
		p.issuers[i] = struct{}{}
	}
	for _, o := range opts {
		o(p)
	}
	if p.replay != nil {
		// Check accepts a token issued up to skew ahead of now and for window
		// plus skew after its iat, so its id must be kept that long.
		p.replay.retainAtLeast(p.replay.window + 2*p.skew)
	}
	return p
}

// Keys returns the trusted cluster issuer keys.
func (p *Issuers) Keys() []string {
	out := make([]string, 0, len(p.issuers))
	for k := range p.issuers {
		out = append(out, k)
	}
	return out
}

// Check validates inv (docs/protocol.md §3 receiver validation) for delivery to the
// entity with public key target. It returns a *lattice.RejectError on refusal.
func (p *Issuers) Check(inv *lattice.Invocation, target string) (*Claims[InvocationClaims], error) {
	c, err := parseJWT[InvocationClaims](inv.EncodedClaims, &p.keys)
	if err != nil {
		return nil, lattice.Reject(lattice.ReasonBadSignature, "%v", err)
	}
	now := p.now()
	if err := c.CheckTime(now, p.skew); err != nil {
		return nil, lattice.Reject(lattice.ReasonExpired, "%v", err)
	}
	// A token issued in the future would pass the freshness check below for
	// as long as its iat lies ahead, and outlive the replay guard's memory of
	// its id. Like a future nbf, it is refused as not yet valid.
	if iat := issuedAt(c); iat.After(now.Add(p.skew)) {
		return nil, lattice.Reject(lattice.ReasonExpired, "token issued at %s, %s in the future (clock skew allowed: %s)",
			iat.UTC().Format(time.RFC3339), iat.Sub(now).Truncate(time.Second), p.skew)
	}
	if c.Wascap == nil {
		return nil, lattice.Reject(lattice.ReasonMalformed, "antiforgery token has no wascap metadata")
	}
	// A chunked payload (docs/protocol.md §3) was fetched before this check
	// (rpc.Server): the hash covers the full payload, as wasmbus-rpc checks it.
	// When the signed URLs are the invocation's (always, but for a forgery
	// or a misdirected call), they are hashed as the claims spell them
	// rather than built anew: two allocations fewer on every call.
	urlsMatch := inv.Origin.URLIs(c.Wascap.OriginURL) && inv.TargetURLIs(c.Wascap.TargetURL)
	originURL, targetURL := c.Wascap.OriginURL, c.Wascap.TargetURL
	if !urlsMatch {
		originURL, targetURL = inv.Origin.URL(), inv.TargetURL()
	}
	if !lattice.InvocationHashIs(c.Wascap.Hash, originURL, targetURL, inv.Operation, inv.Msg) {
		return nil, lattice.Reject(lattice.ReasonHashMismatch, "invocation hash does not match the body")
	}
	if len(inv.HostID) != 56 {
		return nil, lattice.Reject(lattice.ReasonBadHostID, "host_id %q is not a 56-character key", lattice.Abbreviate(inv.HostID))
	}
	if _, ok := p.issuers[c.Issuer]; !ok {
		if err := p.checkDelegation(inv.Delegation, c.Issuer, inv.Origin, now); err != nil {
			return nil, err
		}
	}
	if !urlsMatch {
		return nil, lattice.Reject(lattice.ReasonWrongTarget, "signed origin/target URLs do not match the invocation")
	}
	if inv.Target.PublicKey != target {
		return nil, lattice.Reject(lattice.ReasonWrongTarget, "invocation is addressed to %s, not %s", lattice.Abbreviate(inv.Target.PublicKey), lattice.Abbreviate(target))
	}
	if p.replay != nil {
		if c.Subject != inv.ID {
			return nil, lattice.Reject(lattice.ReasonReplayed, "token subject does not name this invocation id")
		}
		if age := now.Sub(issuedAt(c)); age > p.replay.window+p.skew {
			return nil, lattice.Reject(lattice.ReasonReplayed, "token issued %s ago, older than the %s replay window", age.Truncate(time.Second), p.replay.window)
		}
		switch p.replay.remember(inv.ID, now) {
		case idSeen:
			return nil, lattice.Reject(lattice.ReasonReplayed, "invocation id %s was already seen", inv.ID)
		case idFull:
			// Forgetting ids early would let replays through; refusing
			// bounds memory and the accepted rate instead.
			return nil, lattice.Reject(lattice.ReasonReplayed, "replay guard is full (%d invocation ids within the last %s): refused rather than forget ids early; spread the calls over more hosts or lower LATTICED_REPLAY_WINDOW",
				p.replay.maxIDs, p.replay.Retention())
		}
	}
	p.keys.trusted(c.Issuer)
	return c, nil
}

// Delegation is the `wascap` metadata of a delegation token (latticed
// extension): a cluster issuer lets one provider instance sign invocations
// with its own key, as that provider only, until the token expires. The
// cluster seed then never leaves the node that holds it.
type Delegation struct {
	// SigningKey is the public key the instance signs invocations with; it is
	// also the token's subject.
	SigningKey string `json:"signing_key"`
	// Provider is the only origin the instance may claim.
	Provider lattice.Entity `json:"provider"`
	// InstanceID names the provider instance.
	InstanceID string `json:"instance_id"`
}

// covers reports whether the delegation lets its holder speak as origin. An
// empty contract id (a provider executable without claims, whose contract the
// node could not know at launch) matches any contract of that provider key
// and link name.
func (d *Delegation) covers(origin lattice.Entity) bool {
	return d.Provider.PublicKey == origin.PublicKey && d.Provider.LinkName == origin.LinkName &&
		(d.Provider.ContractID == "" || d.Provider.ContractID == origin.ContractID)
}

// ErrBadDelegation wraps every reason a delegation token is refused.
var ErrBadDelegation = errors.New("invalid delegation")

// IssueDelegation signs a delegation token for signingKey with the cluster
// key, valid for ttl.
func IssueDelegation(cluster *KeyPair, signingKey string, provider lattice.Entity, instanceID string, ttl time.Duration, now time.Time) (string, error) {
	if cluster.Kind() != lattice.KindCluster {
		return "", fmt.Errorf("issue delegation: %w: want a cluster key", ErrWrongKind)
	}
	c := &Claims[Delegation]{
		Subject:  signingKey,
		IssuedAt: now.Unix(),
		Expires:  now.Add(ttl).Unix(),
		Wascap:   &Delegation{SigningKey: signingKey, Provider: provider, InstanceID: instanceID},
	}
	return c.Sign(cluster)
}

// Signer signs invocations: a cluster key, or a delegated key together with
// the token that vouches for it.
type Signer struct {
	Key        *KeyPair
	Delegation string // empty when Key is a cluster key
}

// delegationEntry is a verified token, kept so that steady-state traffic
// pays one signature check (the invocation's), not two.
type delegationEntry struct {
	claims  *Claims[Delegation]
	expires time.Time
}

// maxCachedDelegations bounds the verified-token cache; past it the cache is
// dropped and rebuilt from live traffic.
const maxCachedDelegations = 4096

// checkDelegation verifies token for an invocation signed by signer on behalf
// of origin. It returns a *lattice.RejectError.
func (p *Issuers) checkDelegation(token, signer string, origin lattice.Entity, now time.Time) error {
	if token == "" {
		return lattice.Reject(lattice.ReasonUnknownIssuer, "issuer %s is not a trusted cluster issuer", signer)
	}
	p.mu.RLock()
	e, ok := p.delegations[token]
	p.mu.RUnlock()
	if !ok {
		c, err := ParseJWT[Delegation](token)
		if err != nil {
			return lattice.Reject(lattice.ReasonBadDelegation, "%v", err)
		}
		if _, trusted := p.issuers[c.Issuer]; !trusted {
			return lattice.Reject(lattice.ReasonBadDelegation, "delegation issued by %s, not a trusted cluster issuer", c.Issuer)
		}
		if c.Wascap == nil || c.Wascap.SigningKey != c.Subject || c.Expires == 0 {
			return lattice.Reject(lattice.ReasonBadDelegation, "delegation lacks its signing key or expiry")
		}
		e = delegationEntry{claims: c, expires: time.Unix(c.Expires, 0)}
		p.mu.Lock()
		if len(p.delegations) >= maxCachedDelegations {
			p.delegations = map[string]delegationEntry{}
		}
		p.delegations[token] = e
		p.mu.Unlock()
	}
	d := e.claims.Wascap
	switch {
	case now.After(e.expires.Add(p.skew)):
		return lattice.Reject(lattice.ReasonExpired, "delegation for %s expired at %s", d.Provider.PublicKey, e.expires.UTC().Format(time.RFC3339))
	case d.SigningKey != signer:
		return lattice.Reject(lattice.ReasonBadDelegation, "invocation signed by %s, but the delegation names %s", signer, d.SigningKey)
	case !d.covers(origin):
		return lattice.Reject(lattice.ReasonBadDelegation, "delegation is for %s, not the invocation's origin %s", d.Provider.URL(), origin.URL())
	case p.revoked(d.SigningKey, now):
		return lattice.Reject(lattice.ReasonRevoked, "signing key of provider %s (instance %s) was revoked", d.Provider.PublicKey, d.InstanceID)
	}
	return nil
}

// Revoke refuses invocations signed by signingKey until `until` (the end of
// the longest delegation it could hold; later entries are pruned).
func (p *Issuers) Revoke(signingKey string, until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	for k, t := range p.revocations {
		if now.After(t) {
			delete(p.revocations, k)
		}
	}
	p.revocations[signingKey] = until
}

// Revoked reports whether signingKey is revoked now.
func (p *Issuers) Revoked(signingKey string) bool { return p.revoked(signingKey, p.now()) }

func (p *Issuers) revoked(signingKey string, now time.Time) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	until, ok := p.revocations[signingKey]
	return ok && !now.After(until)
}

// DefaultReplayCapacity is how many invocation ids a host's or provider's
// replay guard holds at most: about 20 bytes each, so at most ~330 MiB, reached
// only by more than 130,000 accepted invocations a second at the default
// retention (window 1m plus twice the 30s skew). Beyond it invocations are
// refused rather than ids forgotten (docs/security.md, "Replay protection").
const DefaultReplayCapacity = 1 << 24

// replaySlices is how many time buckets one retention period spans. More
// buckets keep fewer ids past their retention (at most 1/replaySlices of a
// period) but cost a lookup each.
const replaySlices = 4

// ReplayGuard remembers invocation ids for at least as long as their tokens
// can pass the freshness check: the window, plus twice the clock skew of the
// Issuers that use it (a token may be issued up to one skew ahead and is fresh
// until one skew past the window).
//
// Ids are kept as 16-byte keyed hashes (a random key per process, so a sender
// cannot choose ids that collide; a collision could only refuse a fresh id as
// a replay, never accept a replay) in open-addressing tables without
// pointers, one per time bucket of a quarter of the retention. A bucket goes
// whole once its newest id is older than the retention, so ids live between
// one retention and one retention plus a bucket. When maxIDs ids are held,
// new ids are refused (Issuers.Check says the guard is full) rather
// than old ones forgotten early.
type ReplayGuard struct {
	window time.Duration
	maxIDs int
	seeds  [2]maphash.Seed

	mu      sync.Mutex
	retain  time.Duration   // minimum time an id is remembered; at least window
	buckets []*replayBucket // oldest first; the last one takes new ids
	ids     int             // held in all buckets
}

// replayBucket holds the ids first seen from opened on, until the next
// bucket opens.
type replayBucket struct {
	opened, newest time.Time
	set            idSet
}

// NewReplayGuard refuses tokens older than window and remembers ids for at
// least window (longer once an Issuers with a clock skew uses it), at
// most maxIDs at once.
func NewReplayGuard(window time.Duration, maxIDs int) *ReplayGuard {
	return &ReplayGuard{window: window, retain: window, maxIDs: maxIDs,
		seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}
}

// Window is the freshness window: tokens issued longer ago are refused.
func (g *ReplayGuard) Window() time.Duration { return g.window }

// Retention is the minimum time an id is remembered.
func (g *ReplayGuard) Retention() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.retain
}

func (g *ReplayGuard) retainAtLeast(d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.retain = max(g.retain, d)
}

// Len is how many ids the guard holds now (expired buckets not yet dropped
// included).
func (g *ReplayGuard) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ids
}

// rememberOutcome is what remember did with an id.
type rememberOutcome int

const (
	idNew  rememberOutcome = iota // remembered now
	idSeen                        // a replay (or a hash collision, refused the same way)
	idFull                        // the store holds maxIDs: refused, nothing forgotten
)

// Remember records id and reports whether it was new. It reports false for an
// id seen within the retention and, when the guard is full, for every new id.
func (g *ReplayGuard) Remember(id string, now time.Time) bool {
	return g.remember(id, now) == idNew
}

func (g *ReplayGuard) remember(id string, now time.Time) rememberOutcome {
	k := idKey{maphash.String(g.seeds[0], id) | 1, maphash.String(g.seeds[1], id)} // never the empty slot
	g.mu.Lock()
	defer g.mu.Unlock()
	g.expire(now)
	for _, b := range g.buckets {
		if b.set.has(k) {
			return idSeen
		}
	}
	if g.ids >= g.maxIDs {
		return idFull
	}
	b := g.current(now)
	b.set.add(k)
	if now.After(b.newest) {
		b.newest = now
	}
	g.ids++
	return idNew
}

// expire drops the buckets whose every id is older than the retention. A
// clock that goes back drops nothing.
func (g *ReplayGuard) expire(now time.Time) {
	n := 0
	for n < len(g.buckets) && now.Sub(g.buckets[n].newest) > g.retain {
		g.ids -= g.buckets[n].set.n
		n++
	}
	if n > 0 {
		g.buckets = append(g.buckets[:0], g.buckets[n:]...)
		clear(g.buckets[len(g.buckets):cap(g.buckets)]) // let the dropped tables go
	}
}

// current is the bucket new ids go to, opening one every retain/replaySlices.
// A new bucket is sized for as many ids as the last one took, so a steady
// rate never grows a table.
func (g *ReplayGuard) current(now time.Time) *replayBucket {
	if k := len(g.buckets); k > 0 && now.Sub(g.buckets[k-1].opened) < g.retain/replaySlices {
		return g.buckets[k-1]
	}
	hint := 0
	if k := len(g.buckets); k > 0 {
		hint = g.buckets[k-1].set.n
	}
	b := &replayBucket{opened: now, newest: now, set: newIDSet(hint)}
	g.buckets = append(g.buckets, b)
	return b
}

// idKey is an id's keyed 128-bit hash; the zero key marks an empty slot.
type idKey [2]uint64

// idSet is an open-addressing hash set of keys with linear probing, filled
// to at most 4/5: 20 bytes per key when sized for its load. It holds no
// pointers, so the garbage collector never scans it.
type idSet struct {
	slots []idKey
	n     int
}

const minIDSetSlots = 64

func newIDSet(hint int) idSet {
	return idSet{slots: make([]idKey, max(minIDSetSlots, hint+hint/4+1))}
}

// home is k's first slot: the high bits of a multiply, which spreads keys over
// a table of any length.
func (s *idSet) home(k idKey) int {
	hi, _ := bits.Mul64(k[1], uint64(len(s.slots)))
	return int(hi)
}

func (s *idSet) has(k idKey) bool {
	if s.n == 0 {
		return false
	}
	for i := s.home(k); ; {
		switch s.slots[i] {
		case k:
			return true
		case idKey{}:
			return false
		}
		if i++; i == len(s.slots) {
			i = 0
		}
	}
}

// add inserts k, which the set does not hold.
func (s *idSet) add(k idKey) {
	if (s.n+1)*5 > len(s.slots)*4 {
		old := s.slots
		s.slots = make([]idKey, 2*len(old))
		for _, o := range old {
			if o != (idKey{}) {
				s.put(o)
			}
		}
	}
	s.put(k)
	s.n++
}

func (s *idSet) put(k idKey) {
	i := s.home(k)
	for s.slots[i] != (idKey{}) {
		if i++; i == len(s.slots) {
			i = 0
		}
	}
	s.slots[i] = k
}
