package trust

import (
	"fmt"
	"time"

	"github.com/google/uuid"

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
		ID: uuid.NewString(), HostID: hostID, ContentLength: uint64(len(msg)), Delegation: s.Delegation,
	}
	targetURL, originURL := inv.TargetURL(), origin.URL()
	c := &Claims[InvocationClaims]{
		Subject: inv.ID,
		Wascap: &InvocationClaims{
			TargetURL: targetURL, OriginURL: originURL,
			Hash: lattice.InvocationHash(originURL, targetURL, operation, msg),
		},
	}
	token, err := c.Sign(signer)
	if err != nil {
		return nil, fmt.Errorf("sign invocation: %w", err)
	}
	inv.EncodedClaims = token
	return inv, nil
}

// issuedAt is a helper for policies: the token's iat as a time.
func issuedAt(c *Claims[InvocationClaims]) time.Time { return time.Unix(c.IssuedAt, 0) }
