package providermain

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/provider"
)

// TestCountsKeepTheProviderSeries: each provider.Metrics call counts on
// the series a provider's registry has always had, which the supervisor
// merges and the alert rules and dashboard read, and on no other.
func TestCountsKeepTheProviderSeries(t *testing.T) {
	tests := []struct {
		name   string
		count  func(c *metrics.ProviderCounts)
		family string
		series string // the one series of family counted, its labels sorted
	}{
		{"served invocation", func(c *metrics.ProviderCounts) { c.Invocation("KeyValue.Get", true) },
			"latticed_provider_invocations_total", "operation=KeyValue.Get,result=ok"},
		{"failed invocation of an unknown operation", func(c *metrics.ProviderCounts) { c.Invocation("Made.Up", false) },
			"latticed_provider_invocations_total", "operation=other,result=error"},
		{"rejection", func(c *metrics.ProviderCounts) { c.Rejected(string(lattice.ReasonReplayed)) },
			"latticed_invocations_rejected_total", "reason=" + string(lattice.ReasonReplayed)},
		{"renewal applied", func(c *metrics.ProviderCounts) { c.CredentialRenewal(provider.RenewalApplied) },
			"latticed_provider_credential_renewals_total", "result=applied"},
		{"renewal refused", func(c *metrics.ProviderCounts) { c.CredentialRenewal(provider.RenewalRefused) },
			"latticed_provider_credential_renewals_total", "result=refused"},
		{"renewal handed over in vain", func(c *metrics.ProviderCounts) { c.CredentialRenewal(provider.RenewalHandoverFailed) },
			"latticed_provider_credential_renewals_total", "result=handover_failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := metrics.NewProvider()
			tt.count(metrics.NewProviderCounts(m))
			want := map[string]float64{tt.series: 1}
			if got := counted(t, m, tt.family); !maps.Equal(got, want) {
				t.Errorf("%s counted %v, want %v", tt.family, got, want)
			}
		})
	}
}

// counted is the series of counter family name on m that are not 0, by
// their labels (name=value, sorted, comma-separated).
func counted(t *testing.T, m *metrics.Metrics, name string) map[string]float64 {
	t.Helper()
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			if v := s.GetCounter().GetValue(); v != 0 {
				var labels []string
				for _, l := range s.GetLabel() {
					labels = append(labels, l.GetName()+"="+l.GetValue())
				}
				slices.Sort(labels)
				out[strings.Join(labels, ",")] = v
			}
		}
		return out
	}
	t.Fatalf("no family %s on the registry", name)
	return nil
}

// TestRejectionSeriesStartAtZero: every reason a provider refuses for has
// its series from the start, not from the first refusal, and a refusal
// counts on its reason's.
func TestRejectionSeriesStartAtZero(t *testing.T) {
	m := metrics.NewProvider()
	c := metrics.NewProviderCounts(m)
	reasons := []string{provider.ReasonNotLinked}
	for _, r := range lattice.RejectReasons {
		reasons = append(reasons, string(r))
	}
	for _, r := range reasons {
		if v := testutil.ToFloat64(m.InvocationsRejected.WithLabelValues(r)); v != 0 {
			t.Errorf("rejections for %s start at %v", r, v)
		}
	}
	if n := testutil.CollectAndCount(m.InvocationsRejected); n != len(reasons) {
		t.Errorf("%d rejection series, want one per reason (%d)", n, len(reasons))
	}
	c.Rejected(provider.ReasonNotLinked)
	if v := testutil.ToFloat64(m.InvocationsRejected.WithLabelValues(provider.ReasonNotLinked)); v != 1 {
		t.Errorf("after one refusal, %s counts %v", provider.ReasonNotLinked, v)
	}
}

// TestMetricsEndpointIsAnnounced: the announced address serves the
// registry, until stopped.
func TestMetricsEndpointIsAnnounced(t *testing.T) {
	m := metrics.NewProvider()
	metrics.NewProviderCounts(m).Invocation("KeyValue.Set", true)
	var out bytes.Buffer
	stop, err := serveMetrics(m, &out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	var line map[string]string
	if err := json.Unmarshal(out.Bytes(), &line); err != nil {
		t.Fatalf("announcement %q: %v", out.String(), err)
	}
	addr := line[metrics.AnnounceKey]
	if !strings.HasPrefix(addr, "127.0.0.1:") || line["level"] != "INFO" {
		t.Fatalf("announcement %q: want level INFO and a loopback address under %s", out.String(), metrics.AnnounceKey)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `latticed_provider_invocations_total{operation="KeyValue.Set",result="ok"} 1`; !strings.Contains(string(body), want) {
		t.Errorf("GET /metrics: no %s in\n%s", want, body)
	}
	stop()
	if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
		resp.Body.Close()
		t.Error("the endpoint still answers after stop")
	}
}
