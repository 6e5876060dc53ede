package promnames

import (
	"slices"
	"testing"
)

func TestMetrics(t *testing.T) {
	for expr, want := range map[string][]string{
		`sum by (actor, le) (rate(latticed_x_bucket{job=~"$job", a="b(c)"}[$__rate_interval]))`: {"latticed_x_bucket"},
		`a / on(instance) group_left(version) b > 0.5 and c offset 5m`:                          {"a", "b", "c"},
		`histogram_quantile(0.99, sum(rate(h_bucket[5m])) by (le)) > 1e3`:                       {"h_bucket"},
		`up{job="latticed"} == 0`: {"up"},
	} {
		if got := Metrics(expr); !slices.Equal(got, want) {
			t.Errorf("Metrics(%q) = %q, want %q", expr, got, want)
		}
	}
}

func TestDashboardAndRules(t *testing.T) {
	dash := []byte(`{"panels": [{"title": "a", "targets": [{"expr": "sum(rate(m1_total[5m]))"}]},
		{"title": "row", "panels": [{"title": "b", "targets": [{"expr": "m2 > 0"}]}]}],
		"templating": {"list": [{"name": "actor", "type": "query", "definition": "label_values(m3, actor)"},
		{"name": "iv", "type": "interval", "definition": "x"}]}}`)
	qs, err := DashboardQueries(dash)
	if err != nil {
		t.Fatal(err)
	}
	if got := Used(qs); !slices.Equal(got, []string{"m1_total", "m2", "m3"}) {
		t.Errorf("dashboard uses %q", got)
	}
	rules := []byte("groups:\n- name: g\n  rules:\n  - record: job:r:sum\n    expr: sum(r_total)\n  - alert: A\n    expr: job:r:sum > 1 and up == 0\n")
	qs, rec, err := RuleQueries(rules)
	if err != nil {
		t.Fatal(err)
	}
	if got := Used(qs, rec...); !slices.Equal(got, []string{"r_total", "up"}) {
		t.Errorf("rules use %q (recorded %q)", got, rec)
	}
}
