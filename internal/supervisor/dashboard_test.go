package supervisor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// checkDashboardNamesLive has promtool evaluate the dashboard's per-actor
// panels on a live scrape (as Prometheus would store it, job and instance
// added) and fails unless each panel returns every actor of its metrics
// under the name in names (the actor's claims), the key for an actor not in
// names. Panels on error series only are left out: an actor without errors
// has no such series to show.
func checkDashboardNamesLive(t *testing.T, s scrape, names map[string]string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", filepath.FromSlash(grafanaDashboard)))
	if err != nil {
		t.Fatal(err)
	}
	queries, err := promnames.DashboardQueries(b)
	if err != nil {
		t.Fatal(err)
	}
	var cases []promnames.ExprCase
	families := map[string]bool{}
	seen := map[string]bool{}
	for _, q := range queries {
		if !strings.HasPrefix(q.Where, "panel ") || !strings.Contains(q.Expr, "group_left(name)") || strings.Contains(q.Expr, `result="error"`) {
			continue
		}
		actors := map[string]bool{}
		for _, f := range promnames.Families(s.fams, promnames.Metrics(q.Expr)) {
			families[f] = true
			if f == "latticed_actor_info" {
				continue
			}
			for _, m := range s.fams[f].Metric {
				for _, lp := range m.Label {
					if lp.GetName() == "actor" {
						actors[lp.GetValue()] = true
					}
				}
			}
		}
		c := promnames.ExprCase{Where: q.Where, Expr: "group by (actor, name) (" + promnames.Instantiate(q.Expr) + ")"}
		for a := range actors {
			name := a
			if n, ok := names[a]; ok {
				name = n
				seen[a] = true
			}
			c.Want = append(c.Want, fmt.Sprintf("{actor=%q, name=%q}", a, name))
		}
		cases = append(cases, c)
	}
	for a, n := range names {
		if !seen[a] {
			t.Errorf("no per-actor panel has series of actor %s (%s) in the live scrape", n, a)
		}
	}
	fams := make([]string, 0, len(families))
	for f := range families {
		fams = append(fams, f)
	}
	series := promnames.InputSeries(s.fams, fams, map[string]string{"job": "latticed", "instance": "n1"}, 6)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := promnames.RunExprTests(ctx, promtoolBin(t), t.TempDir(), series, "5m", cases); err != nil {
		t.Errorf("the dashboard's per-actor panels on the live scrape: %v\n%s", err, out)
	}
	t.Logf("%d per-actor panels evaluated by promtool on the live scrape (%d input series) name %d actors", len(cases), len(series), len(seen))
}
