package supervisor

import (
	"os"
	"path/filepath"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/latticed/latticed/internal/promnames"
)

// The dashboard and the rules latticed ships (paths from the module root).
const (
	grafanaDashboard = "deploy/grafana/latticed.json"
	prometheusRules  = "deploy/prometheus/rules/latticed.rules.yml"
)

// seriesNames are the sample names a scrape holds as Prometheus stores them
// (a histogram family f as f_bucket, f_sum, f_count; a summary as f, f_sum,
// f_count).
func (s scrape) seriesNames() map[string]bool {
	out := map[string]bool{}
	for name, f := range s.fams {
		if len(f.Metric) == 0 {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			out[name+"_bucket"], out[name+"_sum"], out[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			out[name], out[name+"_sum"], out[name+"_count"] = true, true, true
		default:
			out[name] = true
		}
	}
	return out
}

// checkDeployNamesLive fails for every metric the Grafana dashboard or the
// alert rules use that none of the live scrapes holds (Prometheus's own
// per-target series and the rules' recorded series aside). Pass scrapes
// taken after the events whose series only then appear.
func checkDeployNamesLive(t *testing.T, scrapes ...scrape) {
	t.Helper()
	live := map[string]bool{}
	for _, s := range scrapes {
		for n := range s.seriesNames() {
			live[n] = true
		}
	}
	for _, n := range promnames.PrometheusSeries {
		live[n] = true
	}
	read := func(rel string) []byte {
		b, err := os.ReadFile(filepath.Join("..", "..", filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	dash, err := promnames.DashboardQueries(read(grafanaDashboard))
	if err != nil {
		t.Fatal(err)
	}
	rules, recorded, err := promnames.RuleQueries(read(prometheusRules))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		file    string
		queries []promnames.Query
	}{{grafanaDashboard, dash}, {prometheusRules, rules}} {
		used := promnames.Used(c.queries, recorded...)
		if len(used) == 0 {
			t.Errorf("%s: no metric names found", c.file)
		}
		missing := 0
		for _, n := range used {
			if !live[n] {
				missing++
				var where []string
				for _, q := range c.queries {
					for _, m := range promnames.Metrics(q.Expr) {
						if m == n {
							where = append(where, q.Where)
						}
					}
				}
				t.Errorf("%s uses %s (%v), which the live node's /metrics does not hold", c.file, n, where)
			}
		}
		t.Logf("%s: %d of the %d metric names it uses are in the live /metrics", c.file, len(used)-missing, len(used))
	}
}
