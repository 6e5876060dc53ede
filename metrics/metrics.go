// Package metrics defines every latticed metric once, on a registry owned by
// the caller (never the global one), so a node exposes exactly what it defines.
package metrics

import (
	"net/http"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/latticed/latticed/internal/buildinfo"
)

// Namespace prefixes every metric name.
const Namespace = "latticed"

// Invocation results (label values of InvocationsTotal).
const (
	ResultOK    = "ok"
	ResultError = "error"
)

// Metrics holds the node's collectors. Labels hold bounded values only: actor
// public keys, operation names, fixed reasons — never paths or invocation ids.
type Metrics struct {
	Registry *prometheus.Registry

	InvocationsTotal      *prometheus.CounterVec   // actor, operation, result
	InvocationDuration    *prometheus.HistogramVec // actor, operation
	InvocationsRejected   *prometheus.CounterVec   // reason
	HostCallsTotal        *prometheus.CounterVec   // actor, namespace kind, result
	ActorsRunning         prometheus.Gauge
	ActorInstances        *prometheus.GaugeVec     // actor
	ActorQueueDepth       *prometheus.GaugeVec     // actor
	ActorQueueWait        *prometheus.HistogramVec // actor
	ActorStartDuration    *prometheus.HistogramVec // phase: compile|cached
	ActorInstanceFailures *prometheus.CounterVec   // actor, kind: timeout|trap|exit

	// Supervisor (latticed up).
	Providers          *prometheus.GaugeVec   // state
	ChildExits         *prometheus.CounterVec // role: host|provider, reason
	ChildRestarts      *prometheus.CounterVec // role, reason
	Revocations        *prometheus.CounterVec // result
	RevocationDuration prometheus.Histogram
}

// New creates and registers every metric on a fresh registry, with Go runtime,
// process and build-info collectors.
func New() *Metrics {
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
			Help:    "Time to compile (or load from the compilation cache) an actor module, by phase.",
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
	}
	r.MustRegister(m.InvocationsTotal, m.InvocationDuration, m.InvocationsRejected, m.HostCallsTotal,
		m.ActorsRunning, m.ActorInstances, m.ActorQueueDepth, m.ActorQueueWait, m.ActorStartDuration,
		m.ActorInstanceFailures,
		m.Providers, m.ChildExits, m.ChildRestarts, m.Revocations, m.RevocationDuration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo())
	return m
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
