package lattice

import "strings"

// CachedClaims is the flattened claims form kept in the lattice cache and
// returned by `get.claims` (comma-joined lists, revision as a string).
type CachedClaims struct {
	CallAlias  string `json:"call_alias"`
	Issuer     string `json:"iss"`
	Name       string `json:"name"`
	Caps       string `json:"caps"`
	Rev        string `json:"rev"`
	Tags       string `json:"tags"`
	Version    string `json:"version"`
	Subject    string `json:"sub"`
	ContractID string `json:"contract_id"` // a provider's contract; "" for an actor, as wasmCloud writes it
}

// CapList splits the comma-joined capabilities, dropping empty entries.
func (c CachedClaims) CapList() []string {
	var out []string
	for _, s := range strings.Split(c.Caps, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
