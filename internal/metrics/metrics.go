// Package metrics defines every latticed metric once, on a registry owned by
// the caller (never the global one), so a node exposes exactly what it defines.
package metrics

import (
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/latticed/latticed/internal/buildinfo"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/provider"
)

// Namespace prefixes every metric name.
const Namespace = "latticed"

// Invocation results (label values of InvocationsTotal).
const (
	ResultOK    = "ok"
	ResultError = "error"
)

// Metrics holds the node's collectors. Labels hold bounded values only: actor
// public keys, operation names bounded per actor (Operations), fixed reasons
// — never paths or invocation ids.
//
// Every series with fixed label values exists, at 0, from the time its owner
// starts (the supervisor, a provider, an actor), not from its first event:
// Prometheus' increase() and rate() see nothing of a series' first sample,
// so an alert on a counter that appears at 1 would miss the first event.
type Metrics struct {
	Registry *prometheus.Registry

	InvocationsTotal      *prometheus.CounterVec   // actor, operation, result
	InvocationDuration    *prometheus.HistogramVec // actor, operation
	InvocationsRejected   *prometheus.CounterVec   // reason
	HostCallsTotal        *prometheus.CounterVec   // actor, namespace kind, result
	ActorsRunning         prometheus.Gauge
	ActorInstances        *prometheus.GaugeVec     // actor
	ActorInfo             *prometheus.GaugeVec     // actor, name, call_alias, version: 1 while running
	ActorQueueDepth       *prometheus.GaugeVec     // actor
	ActorQueueWait        *prometheus.HistogramVec // actor
	ActorStartDuration    *prometheus.HistogramVec // phase: compile|cached|interpreted
	ActorInstanceFailures *prometheus.CounterVec   // actor, kind: timeout|trap|exit
	// PolicyDecisions counts external policy service decisions (host and
	// supervisor): action, result permitted|denied|error, cached true|false.
	PolicyDecisions *prometheus.CounterVec

	// Supervisor (latticed up).
	Providers          *prometheus.GaugeVec   // state
	ChildExits         *prometheus.CounterVec // role: host|provider, reason
	ChildRestarts      *prometheus.CounterVec // role, reason
	Revocations        *prometheus.CounterVec // result
	RevocationDuration prometheus.Histogram
	// ComponentUp is set by the supervisor when it merges its children's
	// metrics: 1 when a child runs and its metrics were scraped, else 0.
	ComponentUp *prometheus.GaugeVec // component: supervisor|host|provider:<key>/<link>

	// NATS connections (every process) and the lattice cache (host).
	NATS                *NATSConns           // conn: rpc|ctl|supervisor|provider
	LatticeCacheEntries *prometheus.GaugeVec // kind: claims|links|refmaps

	// Providers (latticed provider …; see NewProvider).
	ProviderInvocations *prometheus.CounterVec // operation, result
	HTTPRequests        *prometheus.CounterVec // status_class: 2xx|3xx|4xx|5xx|other
	HTTPRequestDuration prometheus.Histogram
	KVOperations        *prometheus.CounterVec // operation, result
	// CredentialRenewals counts renewed NATS user JWTs a provider received,
	// by result: applied, refused (failed its checks), handover_failed.
	CredentialRenewals *prometheus.CounterVec
}

// Results of a provider's credential renewal (CredentialRenewals).
const (
	RenewalApplied        = "applied"
	RenewalRefused        = "refused"
	RenewalHandoverFailed = "handover_failed"
)

// New creates and registers every metric on a fresh registry, with Go runtime,
// process and build-info collectors.
func New() *Metrics {
	m := define()
	m.Registry.MustRegister(m.InvocationsTotal, m.InvocationDuration, m.InvocationsRejected, m.HostCallsTotal,
		m.ActorsRunning, m.ActorInstances, m.ActorInfo, m.ActorQueueDepth, m.ActorQueueWait, m.ActorStartDuration,
		m.ActorInstanceFailures, m.PolicyDecisions,
		m.Providers, m.ChildExits, m.ChildRestarts, m.Revocations, m.RevocationDuration, m.ComponentUp,
		m.NATS, m.LatticeCacheEntries,
		// Provider families are registered here too (they stay empty in the
		// host and supervisor), so that New() describes everything a node
		// exposes once its children's metrics are merged in.
		m.ProviderInvocations, m.HTTPRequests, m.HTTPRequestDuration, m.KVOperations, m.CredentialRenewals,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo())
	return m
}

// NewProvider creates the registry of a provider process: its invocations,
// rejections, the HTTP server and key-value families, its NATS connection,
// Go runtime, process and build info.
func NewProvider() *Metrics {
	m := define()
	m.Registry.MustRegister(m.InvocationsRejected, m.ProviderInvocations, m.HTTPRequests, m.HTTPRequestDuration,
		m.KVOperations, m.CredentialRenewals, m.NATS,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo())
	return m
}

// define creates every collector (the one place each metric is defined) on
// a fresh registry, without registering any.
func define() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		InvocationsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "invocations_total",
			Help: "Invocations handled by actors on this node, by actor, operation and result.",
		}, []string{"actor", "operation", "result"}),
		InvocationDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "invocation_duration_seconds",
			Help:    "Time from receiving an invocation to sending its reply.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"actor", "operation"}),
		PolicyDecisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "policy_decisions_total",
			Help: "Decisions of the external policy service (WASMCLOUD_POLICY_TOPIC), by action (start_actor, start_provider, perform_invocation), result (permitted, denied, error: no or undecodable answer, a denial) and whether the cached decision was used.",
		}, []string{"action", "result", "cached"}),
		InvocationsRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "invocations_rejected_total",
			Help: "Invocations refused before reaching an actor, by reason.",
		}, []string{"reason"}),
		HostCallsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "host_calls_total",
			Help: "Calls actors made out of the sandbox, by actor, target kind (provider, actor, builtin) and result.",
		}, []string{"actor", "target", "result"}),
		ActorsRunning: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "actors_running", Help: "Distinct actors running on this node.",
		}),
		ActorInstances: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "actor_instances", Help: "Live wasm instances per actor.",
		}, []string{"actor"}),
		ActorInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "actor_info",
			Help: "1 for each actor running on this node, labelled with the name, call alias and version of its claims, so that panels and alerts can show names for actor keys: join on actor (… * on(actor) group_left(name) latticed_actor_info).",
		}, []string{"actor", "name", "call_alias", "version"}),
		ActorQueueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "actor_queue_depth", Help: "Invocations waiting for a free instance, per actor.",
		}, []string{"actor"}),
		ActorQueueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "actor_queue_wait_seconds",
			Help:    "Time an invocation waited for a free instance.",
			Buckets: []float64{.00001, .0001, .001, .01, .1, 1},
		}, []string{"actor"}),
		ActorStartDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "actor_start_duration_seconds",
			Help:    "Time to compile (or load from the compilation cache) an actor module, by phase; interpreted: until an actor started on interpreted code while it compiles.",
			Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"phase"}),
		ActorInstanceFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "actor_instance_failures_total",
			Help: "Instances discarded after a timeout, trap or exit, by actor and kind.",
		}, []string{"actor", "kind"}),
		Providers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "providers",
			Help: "Provider instances the supervisor manages, by state (starting, running, backoff, stopping, failed, revoked).",
		}, []string{"state"}),
		ChildExits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "child_exits_total",
			Help: "Child processes that ended, by role (host, provider) and reason (clean_stop, crash, revoked, health_check_failed, crash_loop).",
		}, []string{"role", "reason"}),
		ChildRestarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "child_restarts_total",
			Help: "Child processes restarted by the supervisor, by role and the reason the previous run ended.",
		}, []string{"role", "reason"}),
		Revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "revocations_total",
			Help: "Provider NATS user revocations, by result (ok, error).",
		}, []string{"result"}),
		RevocationDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "revocation_duration_seconds",
			Help:    "Time from a revocation request to the server having closed the provider's connection.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		ComponentUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "component_up",
			Help: "Whether a component of the node (supervisor, host, provider:<key>/<link>) runs and its metrics were scraped (1) or not (0).",
		}, []string{ComponentLabel}),
		NATS: newNATSConns(),
		LatticeCacheEntries: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "lattice_cache_entries",
			Help: "Entries the host knows from the lattice cache stream, by kind (claims, links, refmaps).",
		}, []string{"kind"}),
		ProviderInvocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "provider_invocations_total",
			Help: "Invocations a provider handled for linked actors (after the issuer check), by operation and result (ok, error).",
		}, []string{"operation", "result"}),
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "http_requests_total",
			Help: "Requests served by the HTTP server provider, by status class (2xx, 3xx, 4xx, 5xx).",
		}, []string{"status_class"}),
		HTTPRequestDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "http_request_duration_seconds",
			Help:    "Time the HTTP server provider took to answer a request, actor invocation included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		KVOperations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "kv_operations_total",
			Help: "Key-value provider operations, by operation and result (ok, error).",
		}, []string{"operation", "result"}),
		CredentialRenewals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "provider_credential_renewals_total",
			Help: "Renewed NATS user JWTs a provider received, by result (applied; refused: failed the checks and was ignored; handover_failed: applied, but the new connection could not be made).",
		}, []string{"result"}),
	}
	for _, r := range []string{RenewalApplied, RenewalRefused, RenewalHandoverFailed} {
		m.CredentialRenewals.WithLabelValues(r) // every series from 0, so increase() sees the first one
	}
	return m
}

// ComponentLabel is the label the supervisor adds to every merged series.
const ComponentLabel = "component"

// AnnounceKey is the field of the JSON line in which a child process (a
// provider) announces the loopback address of its private metrics endpoint
// to its supervisor, e.g.
// {"level":"INFO","msg":"provider metrics listening","latticed_metrics_addr":"127.0.0.1:40123"}.
const AnnounceKey = "latticed_metrics_addr"

// statusClasses are the status_class label values of HTTPRequests, indexed
// by statusClass.
var statusClasses = [...]string{"2xx", "3xx", "4xx", "5xx", "other"}

// statusClass is the index in statusClasses of an HTTP status code's class.
func statusClass(code int) int {
	if code >= 200 && code < 600 {
		return code/100 - 2
	}
	return len(statusClasses) - 1
}

// HTTPRequestCounts counts the HTTP server provider's requests: by status
// class on the series of HTTPRequests, looked up once (WithLabelValues
// hashes the label and takes the vector's lock on every call, and every
// request is counted), and their durations on HTTPRequestDuration.
type HTTPRequestCounts struct {
	classes  [len(statusClasses)]prometheus.Counter
	Duration prometheus.Histogram
}

// Count counts one request answered with status code.
func (c *HTTPRequestCounts) Count(code int) { c.classes[statusClass(code)].Inc() }

// Result is the result label value of an error: ResultOK or ResultError.
func Result(err error) string {
	if err != nil {
		return ResultError
	}
	return ResultOK
}

// Instance failure kinds (label values of ActorInstanceFailures).
const (
	FailureTimeout = "timeout"
	FailureTrap    = "trap"
	FailureExit    = "exit"
)

// Host call target kinds (label values of HostCallsTotal).
const (
	TargetProvider = "provider"
	TargetActor    = "actor"
	TargetBuiltin  = "builtin"
)

// Supervisor child roles (role label of ChildExits and ChildRestarts).
const (
	RoleHost     = "host"
	RoleProvider = "provider"
)

// InitActor creates the series of one actor's failure and host-call
// counters at 0; the host calls it when the actor starts.
func (m *Metrics) InitActor(actor string) {
	for _, k := range []string{FailureTimeout, FailureTrap, FailureExit} {
		m.ActorInstanceFailures.WithLabelValues(actor, k)
	}
	for _, t := range []string{TargetProvider, TargetActor, TargetBuiltin} {
		for _, r := range []string{ResultOK, ResultError} {
			m.HostCallsTotal.WithLabelValues(actor, t, r)
		}
	}
}

// InitSupervisor creates the supervisor's counter series at 0: revocations
// by result, and child exits and restarts by role and each exit reason.
func (m *Metrics) InitSupervisor(exitReasons []string) {
	for _, r := range []string{ResultOK, ResultError} {
		m.Revocations.WithLabelValues(r)
	}
	for _, reason := range exitReasons {
		for _, role := range []string{RoleHost, RoleProvider} {
			m.ChildExits.WithLabelValues(role, reason)
			m.ChildRestarts.WithLabelValues(role, reason)
		}
	}
}

// InitHTTPServer creates the HTTP server provider's request series at 0,
// one per status class, so the first 5xx shows in increase(), and returns
// them for counting.
func (m *Metrics) InitHTTPServer() *HTTPRequestCounts {
	c := &HTTPRequestCounts{Duration: m.HTTPRequestDuration}
	for i, class := range statusClasses {
		c.classes[i] = m.HTTPRequests.WithLabelValues(class)
	}
	return c
}

// InitRejectReasons pre-creates a zero series per reason so alerts and rate()
// see every reason from the start.
func (m *Metrics) InitRejectReasons(reasons []string) {
	for _, r := range reasons {
		m.InvocationsRejected.WithLabelValues(r)
	}
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

func buildInfo() prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info", Help: "Build information; always 1.",
		ConstLabels: prometheus.Labels{"version": buildinfo.Version, "commit": buildinfo.GetCommit(), "goversion": runtime.Version()},
	})
	g.Set(1)
	return g
}

// newNATSConns defines the NATS connection families (see NATSConns).
func newNATSConns() *NATSConns {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "nats", name), help, []string{"conn"}, nil)
	}
	return &NATSConns{
		connected:  d("connected", "Whether the NATS connection is connected (1) or not (0), by connection role."),
		reconnects: d("reconnects_total", "Times the NATS connection reconnected, by connection role."),
		inBytes:    d("in_bytes_total", "Bytes received on the NATS connection, by connection role."),
		outBytes:   d("out_bytes_total", "Bytes sent on the NATS connection, by connection role."),
		inMsgs:     d("in_msgs_total", "Messages received on the NATS connection, by connection role."),
		outMsgs:    d("out_msgs_total", "Messages sent on the NATS connection, by connection role."),
		conns:      map[string]natsConn{},
	}
}

// OperationOther is the operation label value that stands for every
// operation outside an Operations set.
const OperationOther = "other"

// MaxOperations is how many operations of one actor (or one provider) get a
// label value of their own; the rest are counted as OperationOther.
const MaxOperations = 32

// Operations bounds the values of an operation label, which comes from
// whoever sends an invocation: an operation gets a value of its own once
// the actor (or provider) has answered it successfully, while fewer than
// max have; every other call is counted as OperationOther. Made-up names
// thus fail into "other", and even an actor that answers anything (an
// echo) adds at most max series. The zero value is not usable; see
// NewOperations. Safe for concurrent use; a known operation costs one map
// read.
type Operations struct {
	max   int32
	n     atomic.Int32
	known sync.Map // operation → struct{}
}

// NewOperations returns an empty set that admits up to max operations.
func NewOperations(max int) *Operations { return &Operations{max: int32(max)} }

// Label is the label value for one call of operation that succeeded (ok)
// or not.
func (o *Operations) Label(operation string, ok bool) string {
	if _, known := o.known.Load(operation); known {
		return operation
	}
	if !ok || operation == OperationOther {
		return OperationOther
	}
	if o.n.Add(1) > o.max {
		o.n.Add(-1)
		return OperationOther
	}
	if _, loaded := o.known.LoadOrStore(operation, struct{}{}); loaded {
		o.n.Add(-1) // a concurrent call admitted it first
	}
	return operation
}

// ProviderCounts is provider.Metrics on a provider process's registry: the
// series
// the supervisor scrapes, merges and alerts on (docs/operations.md).
type ProviderCounts struct {
	m   *Metrics
	ops *Operations // bounds the operation label: invokers choose names
}

// NewProviderCounts counts on m, whose rejection series all exist from now on, at 0,
// so that increase() sees the first rejection of each reason.
func NewProviderCounts(m *Metrics) *ProviderCounts {
	reasons := make([]string, 0, len(lattice.RejectReasons)+1)
	for _, r := range lattice.RejectReasons {
		reasons = append(reasons, string(r))
	}
	m.InitRejectReasons(append(reasons, provider.ReasonNotLinked))
	return &ProviderCounts{m: m, ops: NewOperations(MaxOperations)}
}

// Invocation implements provider.Metrics.
func (c *ProviderCounts) Invocation(operation string, ok bool) {
	result := ResultOK
	if !ok {
		result = ResultError
	}
	c.m.ProviderInvocations.WithLabelValues(c.ops.Label(operation, ok), result).Inc()
}

// Rejected implements provider.Metrics.
func (c *ProviderCounts) Rejected(reason string) {
	c.m.InvocationsRejected.WithLabelValues(reason).Inc()
}

// CredentialRenewal implements provider.Metrics.
func (c *ProviderCounts) CredentialRenewal(r provider.Renewal) {
	result := RenewalApplied
	switch r {
	case provider.RenewalRefused:
		result = RenewalRefused
	case provider.RenewalHandoverFailed:
		result = RenewalHandoverFailed
	}
	c.m.CredentialRenewals.WithLabelValues(result).Inc()
}

// Conn implements provider.Metrics: the connection's statistics are read at
// each scrape, under conn="provider".
func (c *ProviderCounts) Conn(nc *nats.Conn) { c.m.NATS.Track("provider", nc) }
