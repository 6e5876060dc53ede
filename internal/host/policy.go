package host

import (
	"github.com/latticed/latticed/internal/policy"
	"github.com/latticed/latticed/lattice"
)

// policySourceOf describes an invocation's origin from what the lattice
// cache knows of its claims.
func (h *Host) policySourceOf(origin lattice.Entity) policy.Source {
	src := policy.Source{PublicKey: origin.PublicKey, ContractID: origin.ContractID, LinkName: origin.LinkName, Capabilities: []string{}}
	if c, ok := h.state.claimsOf(origin.PublicKey); ok {
		src.Capabilities, src.Issuer = c.CapList(), c.Issuer
	}
	return src
}

func (h *Host) policyHost() policy.Host {
	return policy.NewHost(h.id, h.opts.ClusterKey.PublicKey(), h.opts.LatticePrefix, h.labelsCopy(), h.opts.Issuers)
}
