package policy

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/internal/testing/testenv"
)

func TestDecisionsAreCountedByActionResultAndCache(t *testing.T) {
	s := testenv.NATS(t)
	nc := testenv.Connect(t, s)
	m := metrics.New()
	svc := New(testenv.Connect(t, s), topic, 200*time.Millisecond, hostInfo)
	svc.ObserveDecisions(CountDecisions(m.PolicyDecisions))
	ctx := context.Background()
	src, tgt := Source{PublicKey: "MA"}, Target{PublicKey: "MB"}
	_, _ = svc.Decide(ctx, ActionStartActor, src, tgt) // no responder yet: error, not cached
	responder(t, nc, func(r Request) any {
		return Decision{RequestID: r.RequestID, Permitted: r.Action == ActionStartActor, Message: "no"}
	})
	for range 2 {
		_, _ = svc.Decide(ctx, ActionStartActor, src, tgt)
		_, _ = svc.Decide(ctx, ActionPerformInvocation, src, tgt)
	}
	for _, tc := range []struct {
		action, result, cached string
		want                   float64
	}{
		{ActionStartActor, ResultError, "false", 1},
		{ActionStartActor, ResultPermitted, "false", 1},
		{ActionStartActor, ResultPermitted, "true", 1},
		{ActionPerformInvocation, ResultDenied, "false", 1},
		{ActionPerformInvocation, ResultDenied, "true", 1},
		{ActionStartProvider, ResultPermitted, "false", 0},
	} {
		if got := testutil.ToFloat64(m.PolicyDecisions.WithLabelValues(tc.action, tc.result, tc.cached)); got != tc.want {
			t.Errorf("%s %s cached=%s: %v, want %v", tc.action, tc.result, tc.cached, got, tc.want)
		}
	}
}

// BenchmarkDecideCachedCounted is BenchmarkDecideCached with the metric
// observer the host installs: the per-invocation cost of a counted decision.
func BenchmarkDecideCachedCounted(b *testing.B) {
	s := testenv.NATS(b)
	nc := testenv.Connect(b, s)
	svc := New(testenv.Connect(b, s), topic, time.Second, hostInfo)
	svc.ObserveDecisions(CountDecisions(metrics.New().PolicyDecisions))
	responder(b, nc, func(r Request) any { return Decision{RequestID: r.RequestID, Permitted: true} })
	ctx := context.Background()
	src, tgt := Source{PublicKey: "VPROV", ContractID: "wasmcloud:httpserver", LinkName: "default"}, Target{PublicKey: "MX"}
	if _, err := svc.Decide(ctx, ActionPerformInvocation, src, tgt); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := svc.Decide(ctx, ActionPerformInvocation, src, tgt); err != nil {
			b.Fatal(err)
		}
	}
}
