package promnames

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"
)

// grafanaVars are the dashboard's variables with values that select every
// series (the dashboard's "All" is ".*") and a fixed range for the
// $__rate_interval / $__range Grafana fills in.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "5m", "$__range", "5m",
	"${datasource}", "prometheus",
	"$job", ".*", "$instance", ".*", "$actor", ".*",
)

// Instantiate turns a dashboard query into the PromQL Grafana would send
// with every variable at "All", so Prometheus (promtool) can evaluate it.
func Instantiate(expr string) string { return grafanaVars.Replace(expr) }

// ExprCase is one expression promtool evaluates, and the label sets of the
// samples it must return, each with value 1 (e.g. `{actor="M…", name="echo"}`).
// Wrap an expression in group by (…) (…) to compare labels only.
type ExprCase struct {
	Where string // for the error message, e.g. `panel "Instances by actor"`
	Expr  string
	Want  []string
}

// RunExprTests evaluates the cases with `promtool test rules` at evalTime
// (e.g. "5m") on input series given in promtool's notation (series →
// values, e.g. `latticed_actor_instances{actor="M…"}` → "1 1 1"), sampled
// every minute. The file is written into dir. It returns promtool's output,
// which on a failure names the expression and what it returned.
func RunExprTests(ctx context.Context, promtool, dir string, series map[string]string, evalTime string, cases []ExprCase) ([]byte, error) {
	type sample struct {
		Labels string  `yaml:"labels"`
		Value  float64 `yaml:"value"`
	}
	type exprTest struct {
		Expr       string   `yaml:"expr"`
		EvalTime   string   `yaml:"eval_time"`
		ExpSamples []sample `yaml:"exp_samples"`
	}
	type input struct {
		Series string `yaml:"series"`
		Values string `yaml:"values"`
	}
	var in []input
	for s, v := range series {
		in = append(in, input{s, v})
	}
	sort.Slice(in, func(i, j int) bool { return in[i].Series < in[j].Series })
	var tests []exprTest
	for _, c := range cases {
		et := exprTest{Expr: c.Expr, EvalTime: evalTime, ExpSamples: []sample{}}
		for _, w := range c.Want {
			et.ExpSamples = append(et.ExpSamples, sample{Labels: w, Value: 1})
		}
		tests = append(tests, et)
	}
	file := map[string]any{
		"rule_files":          []string{},
		"evaluation_interval": "1m",
		"tests":               []any{map[string]any{"interval": "1m", "input_series": in, "promql_expr_test": tests}},
	}
	b, err := yaml.Marshal(file)
	if err != nil {
		return nil, fmt.Errorf("encode the promtool test: %w", err)
	}
	path := filepath.Join(dir, "exprs.test.yml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return nil, fmt.Errorf("write the promtool test: %w", err)
	}
	out, err := exec.CommandContext(ctx, promtool, "test", "rules", path).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("promtool test rules %s: %w", path, err)
	}
	return out, nil
}

// InputSeries turns the samples of the named families of a scrape into
// promtool input series, each with the labels extra added (as Prometheus
// adds job and instance) and its value repeated n times: histograms as
// their _bucket (le), _sum and _count series, as Prometheus stores them.
func InputSeries(fams map[string]*dto.MetricFamily, names []string, extra map[string]string, n int) map[string]string {
	out := map[string]string{}
	repeat := func(v float64) string {
		return strings.TrimSpace(strings.Repeat(strconv.FormatFloat(v, 'g', -1, 64)+" ", n))
	}
	for _, name := range names {
		f, ok := fams[name]
		if !ok {
			continue
		}
		for _, m := range f.Metric {
			labels := map[string]string{}
			for k, v := range extra {
				labels[k] = v
			}
			for _, lp := range m.Label {
				labels[lp.GetName()] = lp.GetValue()
			}
			switch {
			case m.Histogram != nil:
				h := m.Histogram
				for _, b := range h.Bucket {
					labels["le"] = strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)
					out[seriesString(name+"_bucket", labels)] = repeat(float64(b.GetCumulativeCount()))
				}
				labels["le"] = "+Inf"
				out[seriesString(name+"_bucket", labels)] = repeat(float64(h.GetSampleCount()))
				delete(labels, "le")
				out[seriesString(name+"_sum", labels)] = repeat(h.GetSampleSum())
				out[seriesString(name+"_count", labels)] = repeat(float64(h.GetSampleCount()))
			case m.Counter != nil:
				out[seriesString(name, labels)] = repeat(m.Counter.GetValue())
			case m.Gauge != nil:
				out[seriesString(name, labels)] = repeat(m.Gauge.GetValue())
			case m.Untyped != nil:
				out[seriesString(name, labels)] = repeat(m.Untyped.GetValue())
			}
		}
	}
	return out
}

// seriesString is name{k="v",…} with the labels sorted and the values
// quoted as PromQL strings.
func seriesString(name string, labels map[string]string) string {
	parts := make([]string, 0, len(labels))
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		parts = append(parts, k+"="+strconv.Quote(labels[k]))
	}
	return name + "{" + strings.Join(parts, ", ") + "}"
}

// histogramSeries matches the series names Prometheus stores a histogram
// family under.
var histogramSeries = regexp.MustCompile(`_(bucket|sum|count)$`)

// Families is the set of metric families (as a scrape names them) behind
// the series names an expression uses: a histogram's _bucket, _sum and
// _count map to the family when the scrape has it under that name.
func Families(fams map[string]*dto.MetricFamily, series []string) []string {
	set := map[string]bool{}
	for _, s := range series {
		if _, ok := fams[s]; ok {
			set[s] = true
			continue
		}
		if f := histogramSeries.ReplaceAllString(s, ""); f != s {
			if _, ok := fams[f]; ok {
				set[f] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}
