package host

import (
	"encoding/json"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/policy"
)

// BenchmarkInvokeEchoPolicyCached is BenchmarkInvokeEcho with a policy
// service configured: after the first call every invocation takes the
// cached perform_invocation decision (and counts it in
// latticed_policy_decisions_total). Compare the two for the cost per call.
func BenchmarkInvokeEchoPolicyCached(b *testing.B) {
	f := newFixture(b, func(o *Options) { o.PolicyTopic = "bench.policy" })
	sub, err := f.nc.Subscribe("bench.policy", func(m *nats.Msg) {
		var req policy.Request
		_ = json.Unmarshal(m.Data, &req)
		out, _ := json.Marshal(policy.Decision{RequestID: req.RequestID, Permitted: true})
		_ = m.Respond(out)
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sub.Unsubscribe() })
	call := benchEcho(b, f)
	if err := call(); err != nil { // the one uncached decision
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := call(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
