package provider

import "github.com/nats-io/nats.go"

// Metrics receives what a Provider counts. The SDK keeps no registry of its
// own, so that it needs no metrics library: a provider process that latticed
// runs backs Metrics with the Prometheus registry its supervisor scrapes
// (internal/providermain), and another process may back it with anything
// or leave it nil (Config.Metrics), which counts nothing. Its methods are
// called concurrently and must not block.
type Metrics interface {
	// Invocation counts one invocation a linked actor made that reached the
	// capability: its operation (chosen by the invoker, so unbounded) and
	// whether Handle returned without an error.
	Invocation(operation string, ok bool)
	// Rejected counts one invocation refused before it reached the
	// capability, by reason: a lattice.Reason or ReasonNotLinked.
	Rejected(reason string)
	// CredentialRenewal counts one renewed NATS user JWT the provider
	// received, by what became of it.
	CredentialRenewal(r Renewal)
	// Conn is the provider's current lattice connection, given when Run
	// connects and again each time a credential renewal hands over to a
	// new one, for connection statistics.
	Conn(nc *nats.Conn)
}

// ReasonNotLinked is the reason of invocations refused because their origin
// actor is not linked to the provider (the one refusal that is not an
// issuer policy rejection).
const ReasonNotLinked = "not_linked"

// Renewal is what became of a renewed NATS user JWT (Metrics.CredentialRenewal).
type Renewal int

// Renewal outcomes.
const (
	// RenewalApplied: the JWT passed its checks and the provider moved to a
	// connection made with it.
	RenewalApplied Renewal = iota
	// RenewalRefused: the JWT failed its checks and was ignored.
	RenewalRefused
	// RenewalHandoverFailed: the JWT passed its checks, but no connection
	// could be made with it, so the provider keeps its current one.
	RenewalHandoverFailed
)

// noMetrics counts nothing: the Metrics of a Config without one.
type noMetrics struct{}

func (noMetrics) Invocation(string, bool)   {}
func (noMetrics) Rejected(string)           {}
func (noMetrics) CredentialRenewal(Renewal) {}
func (noMetrics) Conn(*nats.Conn)           {}
