package trust

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/latticed/latticed/lattice"
)

// ErrNotProviderClaims means a token is not a capability provider's (wrong
// subject or issuer role, or no provider metadata).
var ErrNotProviderClaims = errors.New("claims are not capability provider claims")

// Provider is the `wascap` metadata of a capability provider's claims, as
// wascap's CapabilityProvider writes it into a provider archive's claims.jwt.
type Provider struct {
	Name         string            `json:"name,omitempty"`
	ContractID   string            `json:"capid"`
	Vendor       string            `json:"vendor"`
	Rev          int32             `json:"rev,omitempty"`
	Ver          string            `json:"ver,omitempty"`
	TargetHashes map[string]string `json:"target_hashes"` // "{arch}-{os}" -> upper-case hex SHA-256 of the binary
	ConfigSchema any               `json:"config_schema,omitempty"`
}

// ProviderClaims is a provider's signed claim set.
type ProviderClaims = Claims[Provider]

// ParseProviderClaims verifies a provider claims token: signature, issuer an
// account (A…) key, subject a service (V…) key, metadata with a contract.
// Times are not checked (CheckTime).
func ParseProviderClaims(token string) (*ProviderClaims, error) {
	c, err := ParseJWT[Provider](token)
	if err != nil {
		return nil, fmt.Errorf("provider claims: %w", err)
	}
	if c.Wascap == nil {
		return nil, fmt.Errorf("provider claims: %w", ErrJWTNoMetadata)
	}
	if !lattice.IsPublicKey(c.Subject, lattice.KindService) || !lattice.IsPublicKey(c.Issuer, lattice.KindAccount) {
		return nil, fmt.Errorf("%w: subject must be a service (V…) key and issuer an account (A…) key", ErrNotProviderClaims)
	}
	if c.Wascap.ContractID == "" {
		return nil, fmt.Errorf("%w: no capability contract (capid)", ErrNotProviderClaims)
	}
	return c, nil
}

// FlattenProvider converts provider claims to the cached form.
func FlattenProvider(c *ProviderClaims) lattice.CachedClaims {
	w := c.Wascap
	return lattice.CachedClaims{Issuer: c.Issuer, Name: w.Name, Rev: fmt.Sprint(ProviderRevision(c)), Version: w.Ver, Subject: c.Subject, ContractID: w.ContractID}
}

// ProviderTarget is this machine's provider archive target, "{arch}-{os}"
// with wasmCloud's (Rust's) names: x86_64-linux, aarch64-linux, aarch64-macos.
func ProviderTarget() string { return TargetOf(runtime.GOARCH, runtime.GOOS) }

// TargetOf maps a Go GOARCH/GOOS pair to a provider archive target name.
// wasmCloud names it with Rust's std::env::consts ARCH and OS, as the host
// labels hostcore.arch and hostcore.os (lattice.CoreLabels).
func TargetOf(goarch, goos string) string {
	return lattice.RustArch(goarch) + "-" + lattice.RustOS(goos)
}
