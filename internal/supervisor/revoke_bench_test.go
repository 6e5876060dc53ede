package supervisor

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/child"
	"github.com/latticed/latticed/lattice"
)

// BenchmarkRevocation measures a revocation end to end: from the revoke
// command sent on the admin socket to the provider's connection observed
// closed by the server, with a real provider process each time. It runs at
// least 100 revocations and reports p50/p99 (target: p99 < 50 ms).
//
//	go test ./internal/supervisor -run '^$' -bench Revocation -benchtime 200x
func BenchmarkRevocation(b *testing.B) {
	n := startNode(b, map[string]string{"LATTICED_LOG_LEVEL": "warn"})
	ref := "file://" + providerBin
	rounds := max(b.N, 100)
	lat := make([]time.Duration, 0, rounds)
	b.ResetTimer()
	b.StopTimer()
	for i := 0; i < rounds; i++ {
		if err := n.admin.LaunchProvider(context.Background(), lattice.LaunchProviderCommand{ProviderRef: ref, LinkName: "default"}); err != nil {
			b.Fatal(err)
		}
		n.waitProviderState(ref, "default", child.StateRunning)
		b.StartTimer()
		sent := time.Now()
		rep, err := n.admin.Revoke(context.Background(), lattice.StopProviderCommand{ProviderRef: ref, LinkName: "default"})
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, rep.Closed.Sub(sent))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(lat)), "revocations")
}
