package lattice

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// RejectReason names why an invocation was refused. The same value is the
// metric label, the event field and the start of the error reply.
type RejectReason string

// Rejection reasons, in the order the policy checks them.
const (
	ReasonMalformed            RejectReason = "malformed"
	ReasonTooLarge             RejectReason = "too_large"
	ReasonBadSignature         RejectReason = "bad_signature"
	ReasonExpired              RejectReason = "expired"
	ReasonHashMismatch         RejectReason = "hash_mismatch"
	ReasonBadHostID            RejectReason = "bad_host_id"
	ReasonUnknownIssuer        RejectReason = "unknown_issuer"
	ReasonWrongTarget          RejectReason = "wrong_target"
	ReasonReplayed             RejectReason = "replayed"
	ReasonCapabilityNotClaimed RejectReason = "capability_not_claimed"
	ReasonChunked              RejectReason = "chunked_unsupported"
	ReasonBadDelegation        RejectReason = "bad_delegation" // latticed extension
	ReasonRevoked              RejectReason = "revoked"        // latticed extension
	ReasonPolicyDenied         RejectReason = "policy_denied"
)

// RejectReasons lists every reason (metrics pre-create their label values from it).
var RejectReasons = []RejectReason{
	ReasonMalformed, ReasonTooLarge, ReasonBadSignature, ReasonExpired, ReasonHashMismatch,
	ReasonBadHostID, ReasonUnknownIssuer, ReasonWrongTarget, ReasonReplayed,
	ReasonCapabilityNotClaimed, ReasonChunked, ReasonBadDelegation, ReasonRevoked, ReasonPolicyDenied,
}

// RejectError is a policy refusal. Its message is what the caller sees in the
// InvocationResponse error; wasmCloud prefixes antiforgery failures with
// "Anti-forgery check failed: ", and so do we.
type RejectError struct {
	Reason RejectReason
	Detail string
}

func (e *RejectError) Error() string {
	switch e.Reason {
	case ReasonCapabilityNotClaimed:
		return "Invocation source does not have the required capability claim " + e.Detail
	case ReasonPolicyDenied:
		return "Policy evaluation rejected invocation attempt: " + e.Detail
	case ReasonMalformed, ReasonTooLarge, ReasonChunked:
		return fmt.Sprintf("invocation rejected (%s): %s", e.Reason, e.Detail)
	}
	return fmt.Sprintf("Anti-forgery check failed (%s): %s", e.Reason, e.Detail)
}

// Reject builds a RejectError.
func Reject(reason RejectReason, format string, args ...any) *RejectError {
	return &RejectError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// ReasonOf extracts the reason from an error chain ("" if it is not a rejection).
func ReasonOf(err error) RejectReason {
	var re *RejectError
	if errors.As(err, &re) {
		return re.Reason
	}
	return ""
}

// IssuerPolicy decides whether an incoming invocation may pass: signed by a
// trusted cluster issuer, body untampered, addressed here, fresh, not replayed.
// It is safe for concurrent use.
type IssuerPolicy struct {
	issuers map[string]struct{}
	skew    time.Duration
	replay  *ReplayGuard
	now     func() time.Time

	mu          sync.RWMutex               // read-mostly: every delegated invocation reads, revocations write
	delegations map[string]delegationEntry // verified delegation tokens
	revocations map[string]time.Time       // revoked signing key -> until
}

// PolicyOption configures an IssuerPolicy.
type PolicyOption func(*IssuerPolicy)

// WithReplayGuard turns on latticed's replay protection: invocation ids are
// remembered for the guard's window and tokens issued longer ago are refused.
func WithReplayGuard(g *ReplayGuard) PolicyOption { return func(p *IssuerPolicy) { p.replay = g } }

// WithClockSkew tolerates clocks between nodes that disagree by up to d.
func WithClockSkew(d time.Duration) PolicyOption { return func(p *IssuerPolicy) { p.skew = d } }

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) PolicyOption { return func(p *IssuerPolicy) { p.now = now } }

// NewIssuerPolicy trusts the given cluster public keys.
func NewIssuerPolicy(issuers []string, opts ...PolicyOption) *IssuerPolicy {
	p := &IssuerPolicy{issuers: make(map[string]struct{}, len(issuers)), now: time.Now,
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

// Issuers returns the trusted issuer keys.
func (p *IssuerPolicy) Issuers() []string {
	out := make([]string, 0, len(p.issuers))
	for k := range p.issuers {
		out = append(out, k)
	}
	return out
}

// Check validates inv (docs/protocol.md §3 receiver validation) for delivery to the
// entity with public key target. It returns a *RejectError on refusal.
func (p *IssuerPolicy) Check(inv *Invocation, target string) (*Claims[InvocationClaims], error) {
	c, err := ParseJWT[InvocationClaims](inv.EncodedClaims)
	if err != nil {
		return nil, Reject(ReasonBadSignature, "%v", err)
	}
	now := p.now()
	if err := c.CheckTime(now, p.skew); err != nil {
		return nil, Reject(ReasonExpired, "%v", err)
	}
	// A token issued in the future would pass the freshness check below for
	// as long as its iat lies ahead, and outlive the replay guard's memory of
	// its id. Like a future nbf, it is refused as not yet valid.
	if iat := issuedAt(c); iat.After(now.Add(p.skew)) {
		return nil, Reject(ReasonExpired, "token issued at %s, %s in the future (clock skew allowed: %s)",
			iat.UTC().Format(time.RFC3339), iat.Sub(now).Truncate(time.Second), p.skew)
	}
	if c.Wascap == nil {
		return nil, Reject(ReasonMalformed, "antiforgery token has no wascap metadata")
	}
	// An empty msg with a content length means the body went to chunked
	// storage; the hash then covers bytes we do not have.
	if len(inv.Msg) == 0 && inv.ContentLength > 0 {
		return nil, Reject(ReasonChunked, "payload of %d bytes was sent through the object store, which latticed does not read; send payloads under the 700 KiB chunking threshold", inv.ContentLength)
	}
	originURL, targetURL := inv.Origin.URL(), inv.TargetURL()
	if want := InvocationHash(originURL, targetURL, inv.Operation, inv.Msg); want != c.Wascap.Hash {
		return nil, Reject(ReasonHashMismatch, "invocation hash does not match the body")
	}
	if len(inv.HostID) != 56 {
		return nil, Reject(ReasonBadHostID, "host_id %q is not a 56-character key", abbreviate(inv.HostID))
	}
	if _, ok := p.issuers[c.Issuer]; !ok {
		if err := p.checkDelegation(inv.Delegation, c.Issuer, inv.Origin, now); err != nil {
			return nil, err
		}
	}
	if c.Wascap.TargetURL != targetURL || c.Wascap.OriginURL != originURL {
		return nil, Reject(ReasonWrongTarget, "signed origin/target URLs do not match the invocation")
	}
	if inv.Target.PublicKey != target {
		return nil, Reject(ReasonWrongTarget, "invocation is addressed to %s, not %s", abbreviate(inv.Target.PublicKey), abbreviate(target))
	}
	if p.replay != nil {
		if c.Subject != inv.ID {
			return nil, Reject(ReasonReplayed, "token subject does not name this invocation id")
		}
		if age := now.Sub(issuedAt(c)); age > p.replay.window+p.skew {
			return nil, Reject(ReasonReplayed, "token issued %s ago, older than the %s replay window", age.Truncate(time.Second), p.replay.window)
		}
		switch p.replay.remember(inv.ID, now) {
		case idSeen:
			return nil, Reject(ReasonReplayed, "invocation id %s was already seen", inv.ID)
		case idFull:
			// Forgetting ids early would let replays through; refusing
			// bounds memory and the accepted rate instead.
			return nil, Reject(ReasonReplayed, "replay guard is full (%d invocation ids within the last %s): refused rather than forget ids early; spread the calls over more hosts or lower LATTICED_REPLAY_WINDOW",
				p.replay.maxIDs, p.replay.Retention())
		}
	}
	return c, nil
}
