package trust

import (
	"sync"
	"time"

	"github.com/latticed/latticed/lattice"
)

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
	c, err := ParseJWT[InvocationClaims](inv.EncodedClaims)
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
	// An empty msg with a content length means the body went to chunked
	// storage; the hash then covers bytes we do not have.
	if len(inv.Msg) == 0 && inv.ContentLength > 0 {
		return nil, lattice.Reject(lattice.ReasonChunked, "payload of %d bytes was sent through the object store, which latticed does not read; send payloads under the 700 KiB chunking threshold", inv.ContentLength)
	}
	originURL, targetURL := inv.Origin.URL(), inv.TargetURL()
	if want := lattice.InvocationHash(originURL, targetURL, inv.Operation, inv.Msg); want != c.Wascap.Hash {
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
	if c.Wascap.TargetURL != targetURL || c.Wascap.OriginURL != originURL {
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
	return c, nil
}
