package supervisor

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metricsHandler serves the node's one scrape target: the supervisor's own
// metrics and the host child's, the latter labelled child="host".
func (s *Supervisor) metricsHandler() http.Handler {
	g := prometheus.Gatherers{s.m.Registry, childGatherer{s: s}}
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// childGatherer scrapes the host child's metrics endpoint.
type childGatherer struct{ s *Supervisor }

var scrapeClient = &http.Client{Timeout: 5 * time.Second}

func (c childGatherer) Gather() ([]*dto.MetricFamily, error) {
	h := c.s.hostProc
	if h == nil {
		return nil, nil
	}
	h.mu.Lock()
	addr := h.metricsAddr
	h.mu.Unlock()
	if addr == "" {
		return nil, nil // no host running: its metrics are simply absent
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	resp, err := scrapeClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape host metrics: %w", err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse host metrics: %w", err)
	}
	name, value := "child", roleHost
	out := make([]*dto.MetricFamily, 0, len(fams))
	for _, f := range fams {
		for _, m := range f.Metric {
			m.Label = append(m.Label, &dto.LabelPair{Name: &name, Value: &value})
			sort.Slice(m.Label, func(i, j int) bool { return m.Label[i].GetName() < m.Label[j].GetName() })
		}
		out = append(out, f)
	}
	return out, nil
}
