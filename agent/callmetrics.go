package agent

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/latticed/latticed/metrics"
)

// callMetrics are one actor's per-invocation metric children, looked up by
// their labels once instead of hashed on every call.
type callMetrics struct {
	m          *metrics.Metrics
	key        string
	queueDepth prometheus.Gauge
	queueWait  prometheus.Observer
	ops        sync.Map // operation -> *opMetrics
}

type opMetrics struct {
	ok, failed prometheus.Counter
	duration   prometheus.Observer
}

func newCallMetrics(m *metrics.Metrics, key string) *callMetrics {
	return &callMetrics{
		m: m, key: key,
		queueDepth: m.ActorQueueDepth.WithLabelValues(key),
		queueWait:  m.ActorQueueWait.WithLabelValues(key),
	}
}

// op returns the children for one operation of the actor.
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
	o := c.op(operation)
	if failed {
		o.failed.Inc()
	} else {
		o.ok.Inc()
	}
	o.duration.Observe(seconds)
}
