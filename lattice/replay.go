package lattice

import (
	"hash/maphash"
	"math/bits"
	"sync"
	"time"
)

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
// policy that uses it (a token may be issued up to one skew ahead and is fresh
// until one skew past the window).
//
// Ids are kept as 16-byte keyed hashes (a random key per process, so a sender
// cannot choose ids that collide; a collision could only refuse a fresh id as
// a replay, never accept a replay) in open-addressing tables without
// pointers, one per time bucket of a quarter of the retention. A bucket goes
// whole once its newest id is older than the retention, so ids live between
// one retention and one retention plus a bucket. When maxIDs ids are held,
// new ids are refused (IssuerPolicy.Check says the guard is full) rather
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
// least window (longer once an IssuerPolicy with a clock skew uses it), at
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
