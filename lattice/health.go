package lattice

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
)

// HealthCheckRequest is sent (msgpack) on a provider's health subject
// (RPCHealth). wasmCloud sends an empty map; latticed does the same.
type HealthCheckRequest struct{}

// HealthCheckResponse is a provider's answer (msgpack).
type HealthCheckResponse struct {
	Healthy bool   `json:"healthy" msgpack:"healthy"`
	Message string `json:"message" msgpack:"message"`
	// latticed extension (wasmCloud hosts ignore fields they do not know):
	// a latticed provider sets ReportsLinks and lists in Links what it made
	// of each link it was given. wasmCloud sends links to providers without
	// waiting for an answer (docs/protocol.md §10), so this is how the
	// supervisor learns that a provider refused one.
	ReportsLinks bool          `json:"reports_links,omitempty" msgpack:"reports_links,omitempty"`
	Links        []LinkOutcome `json:"links,omitempty" msgpack:"links,omitempty"`
	// Reconnects counts the times the provider's lattice connection was
	// restored after it was lost (latticed extension): link definitions
	// sent meanwhile never reached it, so the supervisor sends its links
	// again when the count grows.
	Reconnects uint64 `json:"reconnects,omitempty" msgpack:"reconnects,omitempty"`
}

// LinkOutcome is what a provider made of the last link definition it was
// given for one actor: applied (Error empty) or refused, and why. The
// current link stays in force after a refused change.
type LinkOutcome struct {
	ActorID    string `json:"actor_id" msgpack:"actor_id"`
	ContractID string `json:"contract_id" msgpack:"contract_id"`
	LinkName   string `json:"link_name" msgpack:"link_name"`
	// ValuesDigest is LinkValuesDigest of the link's values: it tells which
	// put this outcome answers without repeating values (which may hold
	// credentials) in health replies and inventories.
	ValuesDigest string `json:"values_digest" msgpack:"values_digest"`
	Error        string `json:"error,omitempty" msgpack:"error,omitempty"`
}

// LinkValuesDigest is a digest of link values independent of map order:
// hex SHA-256 over the sorted, length-prefixed keys and values.
func LinkValuesDigest(values map[string]string) string {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(values)) {
		fmt.Fprintf(h, "%d:%s%d:%s", len(k), k, len(values[k]), values[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ShutdownRequest is the JSON body sent on a provider's shutdown subject
// (RPCShutdown); the provider acknowledges, drains and exits.
type ShutdownRequest struct {
	HostID string `json:"host_id"`
}
