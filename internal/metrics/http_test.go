package metrics

import (
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/latticed/latticed/internal/testing/cpubench"
)

// TestHTTPRequestCounts: every series exists at 0 once the provider starts,
// each status counts on its class's series and on no other, and every
// request's duration is observed.
func TestHTTPRequestCounts(t *testing.T) {
	classes := []string{"2xx", "3xx", "4xx", "5xx", "other"}
	for _, tt := range []struct {
		code  int
		class string
	}{
		{200, "2xx"}, {204, "2xx"}, {299, "2xx"}, {301, "3xx"}, {404, "4xx"}, {413, "4xx"}, {499, "4xx"},
		{500, "5xx"}, {503, "5xx"}, {599, "5xx"}, {101, "other"}, {199, "other"}, {600, "other"}, {0, "other"}, {-1, "other"},
	} {
		t.Run(tt.class+"/"+strconv.Itoa(tt.code), func(t *testing.T) {
			m := NewProvider()
			c := m.InitHTTPServer()
			if n := testutil.CollectAndCount(m.HTTPRequests); n != len(classes) {
				t.Fatalf("%d series before any request, want %d at 0", n, len(classes))
			}
			c.Count(tt.code)
			c.Duration.Observe(0.001)
			for _, class := range classes {
				want := 0.0
				if class == tt.class {
					want = 1
				}
				if v := testutil.ToFloat64(m.HTTPRequests.WithLabelValues(class)); v != want {
					t.Errorf("status %d: series %s = %v, want %v", tt.code, class, v, want)
				}
			}
			if n := testutil.CollectAndCount(m.HTTPRequestDuration); n != 1 {
				t.Errorf("duration histogram: %d series, want 1", n)
			}
		})
	}
}

// BenchmarkHTTPRequestCount: counting a request on its status class's
// series looked up once, against looking the series up per request.
func BenchmarkHTTPRequestCount(b *testing.B) {
	m := NewProvider()
	c := m.InitHTTPServer()
	b.Run("lookup-per-request", func(b *testing.B) {
		cpubench.Measure(b, func() { m.HTTPRequests.WithLabelValues(statusClasses[statusClass(200)]).Inc() })
	})
	b.Run("resolved", func(b *testing.B) {
		cpubench.Measure(b, func() { c.Count(200) })
	})
}
