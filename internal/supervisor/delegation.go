package supervisor

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/latticed/latticed/internal/jswrite"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// defaultDelegationTTL is how long a provider instance's delegation token is
// valid. It is renewed at half-life while the instance is healthy, so a
// stolen token outlives a dead or revoked instance by at most this much.
const defaultDelegationTTL = 10 * time.Minute

// signing is how one provider instance signs invocations (a latticed
// extension: docs/protocol.md §16, docs/security.md): a key of its own vouched for by a delegation token from
// the node's cluster key, or, in compatibility mode, the cluster seed itself.
type signing struct {
	key     *trust.KeyPair
	token   string // "" in compatibility mode
	expires time.Time
	issued  time.Time
}

func (s *Supervisor) delegationTTL() time.Duration {
	if s.delegationLifetime > 0 {
		return s.delegationLifetime
	}
	return defaultDelegationTTL
}

// newSigning gives an instance its signing material. The cluster seed leaves
// the node only in compatibility mode.
func (p *providerInstance) newSigning(instanceID string) (signing, error) {
	s := p.sup
	if p.compat {
		return signing{key: s.opts.ClusterKey}, nil
	}
	key, err := trust.CreateKeyPair(lattice.KindService)
	if err != nil {
		return signing{}, err
	}
	return p.delegate(key, instanceID)
}

// delegate issues a delegation token for key, valid from now for the TTL.
func (p *providerInstance) delegate(key *trust.KeyPair, instanceID string) (signing, error) {
	now := time.Now()
	ttl := p.sup.delegationTTL()
	// The contract id binds the token to the contract; an executable without
	// claims has none known here, and an empty one covers any contract of
	// this provider key and link name.
	origin := lattice.Entity{PublicKey: p.key, ContractID: p.contract, LinkName: p.link}
	token, err := trust.IssueDelegation(p.sup.opts.ClusterKey, key.PublicKey(), origin, instanceID, ttl, now)
	if err != nil {
		return signing{}, fmt.Errorf("delegate signing for %s: %w", p.label(), err)
	}
	return signing{key: key, token: token, expires: now.Add(ttl), issued: now}, nil
}

// renewDelegation re-issues a healthy instance's token at half-life and sends
// it to the provider; until then it sends the current token again. A
// revoked or stopped instance is not renewed.
func (p *providerInstance) renewDelegation() {
	p.mu.Lock()
	cur, instanceID := p.signing, p.instanceID
	live := cur.token != "" && p.child.StopReason() == ""
	due := live && time.Since(cur.issued) >= p.sup.delegationTTL()/2
	p.mu.Unlock()
	if !due {
		if live {
			// A renewal sent while the provider was between connections
			// is lost (core NATS); without the repeat it would sign with
			// the old token until that expired. The SDK ignores a repeat.
			_ = p.sendDelegation(cur.token)
		}
		return
	}
	next, err := p.delegate(cur.key, instanceID)
	if err != nil {
		p.sup.log.Error("could not renew delegation", "child", p.label(), "err", err)
		return
	}
	p.mu.Lock()
	if p.child.StopReason() != "" || p.signing.key != cur.key {
		p.mu.Unlock()
		return
	}
	p.signing = next
	p.mu.Unlock()
	if err := p.sendDelegation(next.token); err != nil {
		p.sup.log.Warn("could not send renewed delegation", "child", p.label(), "err", err)
	}
}

// sendDelegation sends the running provider a delegation token
// (lattice.RPCDelegation): a renewal or a repeat.
func (p *providerInstance) sendDelegation(token string) error {
	return p.sup.nc.Publish(lattice.RPCDelegation(p.sup.prefix, p.key, p.link), []byte(token))
}

// revokeSigning writes the instance's signing key into latticed's
// revocations bucket (lattice.RevocationsBucket), which every host follows: from then on no node accepts an
// invocation signed with it, whatever token comes with it.
func (s *Supervisor) revokeSigning(ctx context.Context, p *providerInstance, sg signing, instanceID string) error {
	if sg.token == "" {
		return nil // compatibility mode: the cluster seed cannot be revoked per provider
	}
	rv := lattice.DelegationRevocation{
		SigningKey: sg.key.PublicKey(), InstanceID: instanceID, RevokedAt: time.Now(),
		Provider: lattice.Entity{PublicKey: p.key, ContractID: p.contract, LinkName: p.link},
		// Past the longest delegation it could hold, the entry can go.
		Until: sg.expires.Add(s.delegationTTL()),
	}
	b, err := json.Marshal(rv)
	if err != nil {
		return err
	}
	js, err := s.jetStream()
	if err != nil {
		return err
	}
	subject := lattice.Revocation(s.prefix, rv.SigningKey)
	if _, _, err := jswrite.Publish(ctx, js, subject, b); err != nil {
		return fmt.Errorf("write signing-key revocation to bucket %s: %w", lattice.RevocationsBucket(s.prefix), err)
	}
	s.recordSigningRevocation(ctx, subject, rv.Until)
	return nil
}
