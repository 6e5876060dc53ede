package lattice

import "time"

// DelegationRevocation is the lattice cache entry that revokes a signing key
// (lc.{prefix}.revocations.{signing key}).
type DelegationRevocation struct {
	SigningKey string    `json:"signing_key"`
	Provider   Entity    `json:"provider"`
	InstanceID string    `json:"instance_id"`
	RevokedAt  time.Time `json:"revoked_at"`
	Until      time.Time `json:"until"`
}
