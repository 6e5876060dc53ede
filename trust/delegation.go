package trust

import (
	"errors"
	"fmt"
	"time"

	"github.com/latticed/latticed/lattice"
)

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
