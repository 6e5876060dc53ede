package deploy

import (
	"context"
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"

	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/internal/promnames"
)

// knownSeries is every series name a latticed node can expose, built from
// the code: the names of every collector registered by metrics.New() (its
// Describe), with _bucket/_sum/_count for histograms and summaries.
// Vectors without children are absent from a scrape, so a scrape alone
// would not do.
func knownSeries(t testing.TB) map[string]bool {
	t.Helper()
	m := metrics.New()
	_ = m.Handler()             // registers promhttp's own metrics, as a serving node does
	kind := map[string]string{} // family -> histogram|summary|other|""

	descName := regexp.MustCompile(`fqName: "([^"]+)"`)
	names := func(c prometheus.Collector) []string {
		ch := make(chan *prometheus.Desc)
		go func() { c.Describe(ch); close(ch) }()
		var out []string
		for d := range ch {
			if m := descName.FindStringSubmatch(d.String()); m != nil {
				out = append(out, m[1])
			}
		}
		return out
	}
	for _, n := range names(m.Registry) {
		kind[n] = ""
	}
	// Vectors: the Go type says whether a family is a histogram.
	v := reflect.ValueOf(m).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if !f.CanInterface() || f.IsNil() {
			continue
		}
		c, ok := f.Interface().(prometheus.Collector)
		if !ok || f.Interface() == any(m.Registry) {
			continue
		}
		k := "other"
		switch f.Interface().(type) {
		case *prometheus.HistogramVec:
			k = "histogram"
		case *prometheus.SummaryVec:
			k = "summary"
		}
		for _, n := range names(c) {
			if kind[n] == "" {
				kind[n] = k
			}
		}
	}
	// Families that always have samples (runtime, process, plain metrics).
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			kind[f.GetName()] = "histogram"
		case dto.MetricType_SUMMARY:
			kind[f.GetName()] = "summary"
		default:
			if kind[f.GetName()] == "" {
				kind[f.GetName()] = "other"
			}
		}
	}

	series := map[string]bool{
		// Added by Prometheus to every scrape target.
		"up": true, "scrape_duration_seconds": true, "scrape_samples_scraped": true,
		"scrape_samples_post_metric_relabeling": true, "scrape_series_added": true,
	}
	for n, k := range kind {
		series[n] = true
		switch k {
		case "histogram":
			series[n+"_bucket"], series[n+"_sum"], series[n+"_count"] = true, true, true
		case "summary":
			series[n+"_sum"], series[n+"_count"] = true, true
		case "": // described but never seen and not a field: allow either form
			series[n+"_bucket"], series[n+"_sum"], series[n+"_count"] = true, true, true
		}
	}
	if !series["latticed_invocations_total"] || !series["latticed_invocation_duration_seconds_bucket"] {
		t.Fatalf("could not derive metric names from metrics.New(): %v", sortedKeys(series))
	}
	return series
}

// checkMetricNames fails for every metric an expression uses that latticed
// does not define.
func checkMetricNames(t *testing.T, where, expr string, known map[string]bool) {
	t.Helper()
	used := promnames.Metrics(expr)
	if len(used) == 0 {
		t.Errorf("%s: no metric in %q", where, expr)
	}
	for _, n := range used {
		if !known[n] {
			t.Errorf("%s: metric %s does not exist (not defined in internal/metrics/metrics.go): %s", where, n, strings.Join(strings.Fields(expr), " "))
		}
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert  string `yaml:"alert"`
			Record string `yaml:"record"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type ruleTestFile struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name        string `yaml:"name"`
		InputSeries []struct {
			Series string `yaml:"series"`
			Values string `yaml:"values"`
		} `yaml:"input_series"`
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

const (
	promConfig = "deploy/prometheus/prometheus.yml"
	rulesFile  = "deploy/prometheus/rules/latticed.rules.yml"
	rulesTest  = "deploy/prometheus/rules/latticed.rules.test.yml"
)

// firstEventGroup is the one rule test whose counter appears at its first
// event, to show why that shape must not reach Prometheus.
const firstEventGroup = "counter appearing at its first event"

// The rule tests feed counters as a real node's scrapes show them: absent
// until their owner (supervisor, host, actor) starts, 0 from then on, then
// the events; a test whose series start at their first event would pass
// on a node whose alerts can never fire for it.
func TestAlertRuleInputsStartAsScrapesDo(t *testing.T) {
	var tf ruleTestFile
	if err := yaml.Unmarshal([]byte(readFile(t, rulesTest)), &tf); err != nil {
		t.Fatal(err)
	}
	counter := regexp.MustCompile(`^latticed_[a-z_]+(_total|_bucket)\{`)
	seen := false
	for i, tc := range tf.Tests {
		for _, in := range tc.InputSeries {
			if !counter.MatchString(in.Series) {
				continue
			}
			fields := strings.Fields(in.Values)
			k := 0
			for k < len(fields) && fields[k] == "_" {
				k++
			}
			first := ""
			if k < len(fields) {
				first = fields[k]
			}
			startsAtZero := k > 0 && (first == "0" || strings.HasPrefix(first, "0+"))
			if tc.Name == firstEventGroup {
				seen = true
				if startsAtZero {
					t.Errorf("tests[%d] %q: %s should appear at its first event", i, tc.Name, in.Series)
				}
				for _, a := range tc.AlertRuleTest {
					if len(a.ExpAlerts) > 0 {
						t.Errorf("tests[%d] %q: %s fires, but increase() cannot see a first sample", i, tc.Name, a.Alertname)
					}
				}
				continue
			}
			if !startsAtZero {
				t.Errorf("tests[%d]: %s values %q: want absent samples (_) before its owner starts, then 0, then the events", i, in.Series, in.Values)
			}
		}
	}
	if !seen {
		t.Errorf("%s has no test %q showing a counter that appears at its first event", rulesTest, firstEventGroup)
	}
}

// The scrape config, the rules and their unit tests pass promtool.
func TestPromtool(t *testing.T) {
	pt := tool(t, "promtool", "LATTICED_PROMTOOL_BIN")
	for _, args := range [][]string{
		{"check", "config", path(promConfig)},
		{"check", "rules", path(rulesFile)},
		{"test", "rules", path(rulesTest)},
	} {
		out, err := runTool(t, time.Minute, path("deploy/prometheus"), pt, args...)
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// Every alert uses existing metrics and has a unit test in which it fires.
func TestAlertRules(t *testing.T) {
	known := knownSeries(t)
	var rf ruleFile
	if err := yaml.Unmarshal([]byte(readFile(t, rulesFile)), &rf); err != nil {
		t.Fatal(err)
	}
	var alerts []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				known[r.Record] = true
			}
		}
	}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			checkMetricNames(t, rulesFile+" "+r.Alert+r.Record, r.Expr, known)
			if r.Alert != "" {
				alerts = append(alerts, r.Alert)
			}
		}
	}
	if len(alerts) == 0 {
		t.Fatal("no alerts")
	}

	var tf ruleTestFile
	if err := yaml.Unmarshal([]byte(readFile(t, rulesTest)), &tf); err != nil {
		t.Fatal(err)
	}
	fires := map[string]bool{}
	quiet := map[string]bool{}
	for _, tc := range tf.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	for _, a := range alerts {
		if !fires[a] || !quiet[a] {
			t.Errorf("alert %s needs a unit test in %s where it fires and one where it does not (fires: %v, quiet: %v)", a, rulesTest, fires[a], quiet[a])
		}
	}
	// Label values the rules rely on are the code's.
	for _, m := range regexp.MustCompile(`result="([^"]*)"`).FindAllStringSubmatch(readFile(t, rulesFile), -1) {
		if m[1] != metrics.ResultOK && m[1] != metrics.ResultError {
			t.Errorf("rules filter on result=%q; the code's values are %q and %q", m[1], metrics.ResultOK, metrics.ResultError)
		}
	}
}

// The scrape jobs are named so the rules' job=~"latticed.*" matches them.
func TestScrapeJobs(t *testing.T) {
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName string `yaml:"job_name"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, promConfig)), &cfg); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cfg.RuleFiles, "rules/latticed.rules.yml") {
		t.Errorf("prometheus.yml rule_files %v does not load rules/latticed.rules.yml", cfg.RuleFiles)
	}
	jobs := regexp.MustCompile(`^(?:latticed.*)$`)
	for _, sc := range cfg.ScrapeConfigs {
		if !jobs.MatchString(sc.JobName) {
			t.Errorf("scrape job %q is not matched by the rules' job=~\"latticed.*\"", sc.JobName)
		}
	}
}

// Every query of the Grafana dashboard uses existing metrics.
func TestGrafanaDashboard(t *testing.T) {
	const rel = "deploy/grafana/latticed.json"
	known := knownSeries(t)
	var dash map[string]any
	if err := json.Unmarshal([]byte(readFile(t, rel)), &dash); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	exprs := 0
	ids := map[float64]bool{}
	var walkPanels func(ps []any)
	walkPanels = func(ps []any) {
		for _, p := range ps {
			p := p.(map[string]any)
			id, _ := p["id"].(float64)
			if ids[id] {
				t.Errorf("%s: panel id %v used twice", rel, id)
			}
			ids[id] = true
			if gp, ok := p["gridPos"].(map[string]any); !ok || gp["x"].(float64)+gp["w"].(float64) > 24 {
				t.Errorf("%s: panel %q lacks a gridPos within 24 columns", rel, p["title"])
			}
			for _, tg := range asList(p["targets"]) {
				expr, _ := tg.(map[string]any)["expr"].(string)
				checkMetricNames(t, rel+" panel "+p["title"].(string), expr, known)
				exprs++
			}
			walkPanels(asList(p["panels"]))
		}
	}
	walkPanels(asList(dash["panels"]))
	if exprs < 10 {
		t.Errorf("%s has only %d queries", rel, exprs)
	}

	labelValues := regexp.MustCompile(`^label_values\((.*),\s*\w+\)$`)
	templating, _ := dash["templating"].(map[string]any)
	for _, v := range asList(templating["list"]) {
		v := v.(map[string]any)
		if v["type"] != "query" {
			continue
		}
		q, _ := v["definition"].(string)
		if m := labelValues.FindStringSubmatch(q); m != nil {
			q = m[1]
		}
		checkMetricNames(t, rel+" variable "+v["name"].(string), q, known)
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// Every per-actor panel of the dashboard shows the actor's name: promtool
// evaluates each panel's query (variables at "All") on series of two
// actors, one with a latticed_actor_info series (named "echo") and one
// without (a stopped actor whose counters are still in the window), and
// each panel returns both: the first named by its claims, the second by its
// key, not dropped by the join.
func TestGrafanaActorNames(t *testing.T) {
	pt := tool(t, "promtool", "LATTICED_PROMTOOL_BIN")
	queries, err := promnames.DashboardQueries([]byte(readFile(t, "deploy/grafana/latticed.json")))
	if err != nil {
		t.Fatal(err)
	}
	const named, bare = "MNAMEDACTOR", "MBAREACTOR"
	series := map[string]string{
		`latticed_actor_info{job="latticed", instance="n1", component="host", actor="` + named + `", name="echo", call_alias="echo", version="0.1.0"}`: "1x10",
	}
	var cases []promnames.ExprCase
	for _, q := range queries {
		if !strings.HasPrefix(q.Where, "panel ") || !strings.Contains(q.Expr, "by (actor") {
			continue
		}
		if !strings.Contains(q.Expr, "group_left(name)") {
			t.Errorf("%s shows actors by key: join it with latticed_actor_info (* on(actor) group_left(name) …)", q.Where)
			continue
		}
		for _, m := range promnames.Metrics(q.Expr) {
			if m == "latticed_actor_info" {
				continue
			}
			for _, a := range []string{named, bare} {
				// Every label a panel filters or groups on, so each query
				// has samples on both sides of its divisions.
				base := `{job="latticed", instance="n1", component="host", actor="` + a + `", operation="Echo.Echo", result="error", target="provider", kind="trap"`
				if strings.HasSuffix(m, "_bucket") {
					series[m+base+`, le="0.1"}`] = "0+1x10"
					series[m+base+`, le="+Inf"}`] = "0+2x10"
				} else {
					series[m+base+"}"] = "0+1x10"
				}
			}
		}
		cases = append(cases, promnames.ExprCase{Where: q.Where,
			Expr: "group by (actor, name) (" + promnames.Instantiate(q.Expr) + ")",
			Want: []string{`{actor="` + named + `", name="echo"}`, `{actor="` + bare + `", name="` + bare + `"}`}})
	}
	if len(cases) < 5 {
		t.Fatalf("only %d per-actor panels found", len(cases))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := promnames.RunExprTests(ctx, pt, t.TempDir(), series, "10m", cases); err != nil {
		t.Errorf("%v\n%s", err, out)
	}
	t.Logf("%d per-actor panels show names", len(cases))
}
