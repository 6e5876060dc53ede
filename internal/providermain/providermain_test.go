package providermain

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/provider"
)

// TestCountsKeepTheProviderSeries: each provider.Metrics call lands on the
// series a provider's registry has always had, which the supervisor merges
// and the alert rules and dashboard read.
func TestCountsKeepTheProviderSeries(t *testing.T) {
	tests := []struct {
		name  string
		count func(c *counts)
		want  string // the family's exposition after the call
	}{
		{"served invocation", func(c *counts) { c.Invocation("KeyValue.Get", true) }, `
latticed_provider_invocations_total{operation="KeyValue.Get",result="ok"} 1
`},
		{"failed invocation of an unknown operation", func(c *counts) { c.Invocation("Made.Up", false) }, `
latticed_provider_invocations_total{operation="other",result="error"} 1
`},
		{"renewal applied", func(c *counts) { c.CredentialRenewal(provider.RenewalApplied) }, `
latticed_provider_credential_renewals_total{result="applied"} 1
latticed_provider_credential_renewals_total{result="handover_failed"} 0
latticed_provider_credential_renewals_total{result="refused"} 0
`},
		{"renewal refused", func(c *counts) { c.CredentialRenewal(provider.RenewalRefused) }, `
latticed_provider_credential_renewals_total{result="applied"} 0
latticed_provider_credential_renewals_total{result="handover_failed"} 0
latticed_provider_credential_renewals_total{result="refused"} 1
`},
		{"renewal handed over in vain", func(c *counts) { c.CredentialRenewal(provider.RenewalHandoverFailed) }, `
latticed_provider_credential_renewals_total{result="applied"} 0
latticed_provider_credential_renewals_total{result="handover_failed"} 1
latticed_provider_credential_renewals_total{result="refused"} 0
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := metrics.NewProvider()
			c := newCounts(m)
			tt.count(c)
			name := strings.Fields(strings.TrimSpace(tt.want))[0]
			name = name[:strings.IndexByte(name, '{')]
			if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(help(t, m, name)+tt.want), name); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestRejectionSeriesStartAtZero: every reason a provider refuses for has
// its series from the start, not from the first refusal, and a refusal
// counts on its reason's.
func TestRejectionSeriesStartAtZero(t *testing.T) {
	m := metrics.NewProvider()
	c := newCounts(m)
	reasons := append([]string{provider.ReasonNotLinked}, func() (r []string) {
		for _, x := range lattice.RejectReasons {
			r = append(r, string(x))
		}
		return r
	}()...)
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

// help is the # HELP and # TYPE lines of family name on m's registry.
func help(t *testing.T, m *metrics.Metrics, name string) string {
	t.Helper()
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return "# HELP " + name + " " + f.GetHelp() + "\n# TYPE " + name + " counter\n"
		}
	}
	t.Fatalf("no family %s", name)
	return ""
}

// TestMetricsEndpointIsAnnounced: the announced address serves the
// registry, until stopped.
func TestMetricsEndpointIsAnnounced(t *testing.T) {
	m := metrics.NewProvider()
	newCounts(m).Invocation("KeyValue.Set", true)
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
