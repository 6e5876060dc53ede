package metrics

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/provider"
)

// TestCountsKeepTheProviderSeries: each provider.Metrics call counts on
// the series a provider's registry has always had, which the supervisor
// merges and the alert rules and dashboard read, and on no other.
func TestCountsKeepTheProviderSeries(t *testing.T) {
	tests := []struct {
		name   string
		count  func(c *ProviderCounts)
		family string
		series string // the one series of family counted, its labels sorted
	}{
		{"served invocation", func(c *ProviderCounts) { c.Invocation("KeyValue.Get", true) },
			"latticed_provider_invocations_total", "operation=KeyValue.Get,result=ok"},
		{"failed invocation of an unknown operation", func(c *ProviderCounts) { c.Invocation("Made.Up", false) },
			"latticed_provider_invocations_total", "operation=other,result=error"},
		{"rejection", func(c *ProviderCounts) { c.Rejected(string(lattice.ReasonReplayed)) },
			"latticed_invocations_rejected_total", "reason=" + string(lattice.ReasonReplayed)},
		{"renewal applied", func(c *ProviderCounts) { c.CredentialRenewal(provider.RenewalApplied) },
			"latticed_provider_credential_renewals_total", "result=applied"},
		{"renewal refused", func(c *ProviderCounts) { c.CredentialRenewal(provider.RenewalRefused) },
			"latticed_provider_credential_renewals_total", "result=refused"},
		{"renewal handed over in vain", func(c *ProviderCounts) { c.CredentialRenewal(provider.RenewalHandoverFailed) },
			"latticed_provider_credential_renewals_total", "result=handover_failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewProvider()
			tt.count(NewProviderCounts(m))
			want := map[string]float64{tt.series: 1}
			if got := counted(t, m, tt.family); !maps.Equal(got, want) {
				t.Errorf("%s counted %v, want %v", tt.family, got, want)
			}
		})
	}
}

// counted is the series of counter family name on m that are not 0, by
// their labels (name=value, sorted, comma-separated).
func counted(t *testing.T, m *Metrics, name string) map[string]float64 {
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
	m := NewProvider()
	c := NewProviderCounts(m)
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
