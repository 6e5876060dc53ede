// Package promnames finds the metric names that PromQL expressions use, in
// the Grafana dashboard and the Prometheus rules latticed ships, so tests can
// check them against what a node defines and what a live node serves; and
// has promtool evaluate the dashboard's queries on given series (a live
// node's scrape included), so tests can check what a panel shows.
//
// It reads identifiers, not the PromQL grammar: strings, label matchers,
// ranges, grouping clauses, keywords and function calls are removed first.
package promnames

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Query is one PromQL expression and where it is used.
type Query struct {
	Where string // e.g. `panel "Invocations"`, `alert LatticedHostDown`
	Expr  string
}

var (
	stringsRe  = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	varsRe     = regexp.MustCompile(`\$\{[^}]*\}|\$\w+`)
	bracesRe   = regexp.MustCompile(`\{[^}]*\}`)
	bracketsRe = regexp.MustCompile(`\[[^\]]*\]`)
	groupingRe = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	identRe    = regexp.MustCompile(`\b[a-zA-Z_:][a-zA-Z0-9_:]*\b`)
	keywords   = map[string]bool{
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true,
		"Inf": true, "NaN": true, "atan2": true, "start": true, "end": true,
	}
	labelValuesRe = regexp.MustCompile(`^label_values\((.*),\s*\w+\)$`)
)

// Metrics returns the metric names a PromQL expression selects: identifiers
// outside strings, label matchers, ranges and grouping clauses that are
// neither keywords nor called like functions.
func Metrics(expr string) []string {
	s := stringsRe.ReplaceAllString(expr, ` "" `)
	s = varsRe.ReplaceAllString(s, " ")
	s = bracesRe.ReplaceAllString(s, " ")
	s = bracketsRe.ReplaceAllString(s, " ")
	s = groupingRe.ReplaceAllString(s, " ")
	var out []string
	for _, loc := range identRe.FindAllStringIndex(s, -1) {
		id := s[loc[0]:loc[1]]
		rest := strings.TrimLeft(s[loc[1]:], " \t\n")
		if keywords[id] || strings.HasPrefix(rest, "(") {
			continue
		}
		out = append(out, id)
	}
	return out
}

// DashboardQueries returns every query of a Grafana dashboard (JSON): the
// targets of its panels (rows' nested panels included) and its query
// variables (label_values(<expr>, label) gives <expr>).
func DashboardQueries(data []byte) ([]Query, error) {
	var dash struct {
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Type       string `json:"type"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	var out []Query
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				if tg.Expr != "" {
					out = append(out, Query{Where: fmt.Sprintf("panel %q", p.Title), Expr: tg.Expr})
				}
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	for _, v := range dash.Templating.List {
		if v.Type != "query" || v.Definition == "" {
			continue
		}
		q := v.Definition
		if m := labelValuesRe.FindStringSubmatch(q); m != nil {
			q = m[1]
		}
		out = append(out, Query{Where: fmt.Sprintf("variable %q", v.Name), Expr: q})
	}
	return out, nil
}

type panel struct {
	Title   string `json:"title"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

// RuleQueries returns the expressions of a Prometheus rule file (YAML) and
// the names its recording rules define.
func RuleQueries(data []byte) (queries []Query, recorded []string, err error) {
	var rf struct {
		Groups []struct {
			Rules []struct {
				Alert  string `yaml:"alert"`
				Record string `yaml:"record"`
				Expr   string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &rf); err != nil {
		return nil, nil, fmt.Errorf("rules: %w", err)
	}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			where := "alert " + r.Alert
			if r.Record != "" {
				where = "record " + r.Record
				recorded = append(recorded, r.Record)
			}
			queries = append(queries, Query{Where: where, Expr: r.Expr})
		}
	}
	return queries, recorded, nil
}

// Used is the sorted set of metric names the queries select, less the
// names in except (recording rules' outputs).
func Used(qs []Query, except ...string) []string {
	skip := map[string]bool{}
	for _, e := range except {
		skip[e] = true
	}
	set := map[string]bool{}
	for _, q := range qs {
		for _, n := range Metrics(q.Expr) {
			if !skip[n] {
				set[n] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// PrometheusSeries are the series Prometheus adds to every scrape target.
var PrometheusSeries = []string{"up", "scrape_duration_seconds", "scrape_samples_scraped",
	"scrape_samples_post_metric_relabeling", "scrape_series_added"}
