package host

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/latticed/latticed/internal/metrics"
)

// callMetrics are one actor's per-invocation metric children, looked up by
// their labels once instead of hashed on every call.
type callMetrics struct {
	m          *metrics.Metrics
	key        string
	queueDepth prometheus.Gauge
	queueWait  prometheus.Observer
	ops        sync.Map // operation label -> *opMetrics
	// names bounds the operation label: invokers choose operation names.
	names *metrics.Operations
}

type opMetrics struct {
	ok, failed prometheus.Counter
	duration   prometheus.Observer
}

// newCallMetrics also creates the actor's fixed-label counter series at 0,
// so that alerts see its first failure.
func newCallMetrics(m *metrics.Metrics, key string) *callMetrics {
	m.InitActor(key)
	return &callMetrics{
		m: m, key: key,
		queueDepth: m.ActorQueueDepth.WithLabelValues(key),
		queueWait:  m.ActorQueueWait.WithLabelValues(key),
		names:      metrics.NewOperations(metrics.MaxOperations),
	}
}

// op returns the children for one operation label of the actor.
func (c *callMetrics) op(operation string) *opMetrics {
	if o, ok := c.ops.Load(operation); ok {
		return o.(*opMetrics)
	}
	o, _ := c.ops.LoadOrStore(operation, &opMetrics{
		ok:       c.m.InvocationsTotal.WithLabelValues(c.key, operation, metrics.ResultOK),
		failed:   c.m.InvocationsTotal.WithLabelValues(c.key, operation, metrics.ResultError),
		duration: c.m.InvocationDuration.WithLabelValues(c.key, operation),
	})
	return o.(*opMetrics)
}

// done counts one finished invocation of operation.
func (c *callMetrics) done(operation string, failed bool, seconds float64) {
	o := c.op(c.names.Label(operation, !failed))
	if failed {
		o.failed.Inc()
	} else {
		o.ok.Inc()
	}
	o.duration.Observe(seconds)
}
