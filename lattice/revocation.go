package lattice

import "time"

// DelegationRevocation is the entry of RevocationsBucket that revokes a
// signing key (key: the signing key).
type DelegationRevocation struct {
	SigningKey string    `json:"signing_key"`
	Provider   Entity    `json:"provider"`
	InstanceID string    `json:"instance_id"`
	RevokedAt  time.Time `json:"revoked_at"`
	Until      time.Time `json:"until"`
}
