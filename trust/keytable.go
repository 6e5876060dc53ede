package trust

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"sync"
	"sync/atomic"
	"time"

	"filippo.io/edwards25519"

	"github.com/latticed/latticed/lattice"
)

// Verifying an Ed25519 signature computes [S]B − [k]A and compares its
// encoding with the signature's R. crypto/ed25519 does this with one
// double-scalar multiplication: about 253 point doublings and 90 additions,
// plus decoding A, on every call. Its base point B has precomputed
// multiples; A's would repay only for a key that signs many messages, which
// the library cannot know, and a host knows: the same few keys (the cluster
// issuers, a provider instance's delegated key) sign every invocation it
// receives. A keyTable holds those multiples for one such key, so a verify
// costs about 130 additions and no doublings: about half the time
// (`go test ./trust -run '^$' -bench '^BenchmarkVerify$'`). The result is the same group
// element computed another way, so what is accepted is exactly what
// crypto/ed25519.Verify accepts (FuzzKeyTableVerify compares the two).
//
// Only scalar multiplication is done here; decoding, hashing, scalar
// reduction and encoding are filippo.io/edwards25519's and crypto/sha512's,
// as in crypto/ed25519. Everything the computation reads is public (keys,
// messages, signatures), so it need not run in constant time.

// tableWindows is how many radix-16 digits a 32-byte scalar has. Scalars
// are reduced (below 2^253), so the top digit is at most 1 and takes the
// last carry of the signed recoding without leaving [−8, 8).
const tableWindows = 64

// pointTable holds (j+1)·16^i·P for i < tableWindows and j < 8: 512 points,
// 80 KiB.
type pointTable [tableWindows][8]edwards25519.Point

func newPointTable(p *edwards25519.Point) *pointTable {
	t := new(pointTable)
	base := new(edwards25519.Point).Set(p)
	for i := range t {
		t[i][0].Set(base)
		for j := 1; j < 8; j++ {
			t[i][j].Add(&t[i][j-1], base)
		}
		base.Add(&t[i][7], &t[i][7]) // 16·base = 2·(8·base)
	}
	return t
}

// signedDigits writes s as Σ e[i]·16^i with every e[i] in [−8, 8).
func signedDigits(s *edwards25519.Scalar) [tableWindows]int8 {
	b := s.Bytes() // little-endian, below 2^253
	var e [tableWindows]int8
	for i, x := range b {
		e[2*i], e[2*i+1] = int8(x&15), int8(x>>4)
	}
	for i := 0; i < tableWindows-1; i++ {
		carry := (e[i] + 8) >> 4
		e[i] -= carry << 4
		e[i+1] += carry
	}
	return e
}

// addMultiple adds s·P to acc, where t is P's table.
func (t *pointTable) addMultiple(acc *edwards25519.Point, s *edwards25519.Scalar) {
	for i, d := range signedDigits(s) {
		switch {
		case d > 0:
			acc.Add(acc, &t[i][d-1])
		case d < 0:
			acc.Subtract(acc, &t[i][-d-1])
		}
	}
}

// baseTable is the generator's table, built on first use.
var baseTable = sync.OnceValue(func() *pointTable { return newPointTable(edwards25519.NewGeneratorPoint()) })

// keyTable verifies signatures of one public key with its precomputed
// multiples.
type keyTable struct {
	pub    ed25519.PublicKey
	minusA *pointTable
	// used is the last time (Unix ns) a signature was checked with it, for
	// the eviction of the least recently used table.
	used atomic.Int64
}

// newKeyTable returns nil for a key that is not a point of the curve
// (crypto/ed25519 refuses every signature of it).
func newKeyTable(pub ed25519.PublicKey) *keyTable {
	if len(pub) != ed25519.PublicKeySize {
		return nil
	}
	a, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return nil
	}
	return &keyTable{pub: bytes.Clone(pub), minusA: newPointTable(new(edwards25519.Point).Negate(a))}
}

// verify is crypto/ed25519.Verify(k.pub, msg, sig).
func (k *keyTable) verify(msg, sig []byte) bool {
	if len(sig) != ed25519.SignatureSize || sig[63]&224 != 0 {
		return false
	}
	s, err := new(edwards25519.Scalar).SetCanonicalBytes(sig[32:])
	if err != nil {
		return false
	}
	h := sha512.New()
	h.Write(sig[:32])
	h.Write(k.pub)
	h.Write(msg)
	var digest [sha512.Size]byte
	kh, err := new(edwards25519.Scalar).SetUniformBytes(h.Sum(digest[:0]))
	if err != nil { // 64 bytes are always uniform bytes
		return false
	}
	r := edwards25519.NewIdentityPoint()
	baseTable().addMultiple(r, s)
	k.minusA.addMultiple(r, kh)
	return bytes.Equal(sig[:32], r.Bytes())
}

// A key earns a table once it has signed this many invocations that passed
// every check: building one costs about what two or three verifies do, and a
// key seen once (a provider instance that made one call) would not repay it.
const keyTableAfter = 8

// maxKeyTables bounds the tables an Issuers keeps (80 KiB each): the
// cluster issuers and the delegated keys of the provider instances calling
// this host. Past it the least recently used table is dropped; keys without a
// table are verified by crypto/ed25519 as before.
const maxKeyTables = 64

// maxKeyCandidates bounds the keys counted towards a table; past it the
// counts start again.
const maxKeyCandidates = 4096

// keyTables holds the tables of the keys that sign most of what an Issuers
// checks. Lookups read an immutable map without a lock: every invocation
// makes one, from as many goroutines as the host runs.
type keyTables struct {
	tables atomic.Pointer[map[string]*keyTable]

	mu         sync.Mutex        // admissions
	candidates map[string]uint32 // accepted signatures of keys without a table
	building   map[string]bool   // keys whose table is being built
}

// lookup returns the table of the public nkey pub, or nil (also when kt is
// nil).
func (kt *keyTables) lookup(pub string) *keyTable {
	if kt == nil {
		return nil
	}
	m := kt.tables.Load()
	if m == nil {
		return nil
	}
	t := (*m)[pub]
	if t != nil {
		// Only the eviction order reads it, so a store now and then is
		// enough; skipping the store when the value is recent keeps the
		// cache line shared between the cores verifying with one key.
		if now := time.Now().UnixNano(); now-t.used.Load() > int64(time.Second) {
			t.used.Store(now)
		}
	}
	return t
}

// verify is Verify(pub, data, sig), with pub's table when it has one (kt
// may be nil).
func (kt *keyTables) verify(pub string, data, sig []byte) error {
	t := kt.lookup(pub)
	if t == nil {
		return Verify(pub, data, sig)
	}
	if !t.verify(data, sig) {
		return ErrBadSig
	}
	return nil
}

// trusted counts one more invocation that the public nkey pub signed and
// that passed every check, and builds its table when the key has earned
// one. Only keys that Issuers trusts come here, so nobody can make it build
// tables for keys of their choice.
func (kt *keyTables) trusted(pub string) {
	if m := kt.tables.Load(); m != nil && (*m)[pub] != nil {
		return // the verify's lookup already marked it used
	}
	kt.mu.Lock()
	if kt.candidates == nil || len(kt.candidates) >= maxKeyCandidates {
		kt.candidates = map[string]uint32{}
	}
	kt.candidates[pub]++
	if kt.candidates[pub] < keyTableAfter || kt.building[pub] {
		kt.mu.Unlock()
		return
	}
	delete(kt.candidates, pub)
	if kt.building == nil {
		kt.building = map[string]bool{}
	}
	kt.building[pub] = true
	kt.mu.Unlock()

	var t *keyTable // built outside the lock: about 0.15 ms
	if _, raw, err := lattice.DecodePublicKey(pub); err == nil {
		t = newKeyTable(raw)
	}
	kt.mu.Lock()
	defer kt.mu.Unlock()
	delete(kt.building, pub)
	if t == nil {
		return
	}
	t.used.Store(time.Now().UnixNano())
	old := kt.tables.Load()
	next := make(map[string]*keyTable, maxKeyTables)
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	if len(next) >= maxKeyTables {
		var oldest string
		for k, v := range next {
			if oldest == "" || v.used.Load() < next[oldest].used.Load() {
				oldest = k
			}
		}
		delete(next, oldest)
	}
	next[pub] = t
	kt.tables.Store(&next)
}
