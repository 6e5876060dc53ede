package providermain

import (
	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/provider"
)

// counts is provider.Metrics on a provider process's registry: the series
// the supervisor scrapes, merges and alerts on (docs/operations.md).
type counts struct {
	m   *metrics.Metrics
	ops *metrics.Operations // bounds the operation label: invokers choose names
}

// newCounts counts on m, whose rejection series all exist from now on, at 0,
// so that increase() sees the first rejection of each reason.
func newCounts(m *metrics.Metrics) *counts {
	reasons := make([]string, 0, len(lattice.RejectReasons)+1)
	for _, r := range lattice.RejectReasons {
		reasons = append(reasons, string(r))
	}
	m.InitRejectReasons(append(reasons, provider.ReasonNotLinked))
	return &counts{m: m, ops: metrics.NewOperations(metrics.MaxOperations)}
}

// Invocation implements provider.Metrics.
func (c *counts) Invocation(operation string, ok bool) {
	result := metrics.ResultOK
	if !ok {
		result = metrics.ResultError
	}
	c.m.ProviderInvocations.WithLabelValues(c.ops.Label(operation, ok), result).Inc()
}

// Rejected implements provider.Metrics.
func (c *counts) Rejected(reason string) { c.m.InvocationsRejected.WithLabelValues(reason).Inc() }

// CredentialRenewal implements provider.Metrics.
func (c *counts) CredentialRenewal(r provider.Renewal) {
	result := metrics.RenewalApplied
	switch r {
	case provider.RenewalRefused:
		result = metrics.RenewalRefused
	case provider.RenewalHandoverFailed:
		result = metrics.RenewalHandoverFailed
	}
	c.m.CredentialRenewals.WithLabelValues(result).Inc()
}

// Conn implements provider.Metrics: the connection's statistics are read at
// each scrape, under conn="provider".
func (c *counts) Conn(nc *nats.Conn) { c.m.NATS.Track("provider", nc) }
