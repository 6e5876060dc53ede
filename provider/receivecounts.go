package provider

import (
	"golang.org/x/time/rate"

	"github.com/latticed/latticed/internal/metrics"
)

// receiveCounts holds what invocation.go counts through and logs with, in
// the Prometheus shape it was written for, forwarded to Config.Metrics. It
// exists only while invocation.go does: when the receive pipeline moves into
// rpc (issue 19, item 1), it goes with it, and Metrics is what the pipeline's
// observer calls.
type receiveCounts struct {
	m          receiveCounters
	ops        rawOperations
	rejectLogs *rate.Limiter // refusals are logged, but not at an attacker's pace
}

func newReceiveCounts(m Metrics) receiveCounts {
	return receiveCounts{
		m: receiveCounters{
			ProviderInvocations: func(l ...string) { m.Invocation(l[0], l[1] == metrics.ResultOK) },
			InvocationsRejected: func(l ...string) { m.Rejected(l[0]) },
		},
		rejectLogs: rate.NewLimiter(rate.Limit(10), 20),
	}
}

// receiveCounters are the two counters invocation.go increments, by label
// values: operation and result, and reason.
type receiveCounters struct {
	ProviderInvocations labelCounter
	InvocationsRejected labelCounter
}

// labelCounter counts one event with the label values it is given.
type labelCounter func(labels ...string)

// WithLabelValues is the event of labels, counted by Inc.
func (c labelCounter) WithLabelValues(labels ...string) increment {
	return func() { c(labels...) }
}

// increment counts one event.
type increment func()

// Inc counts the event.
func (i increment) Inc() { i() }

// rawOperations leaves operation names as they are: bounding them is the
// business of whoever turns them into label values (Metrics).
type rawOperations struct{}

// Label is operation, unchanged.
func (rawOperations) Label(operation string, _ bool) string { return operation }
