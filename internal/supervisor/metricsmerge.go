package supervisor

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/latticed/latticed/internal/child"
	"github.com/latticed/latticed/internal/metrics"
)

// The node's one scrape target merges every process's registry, each series
// labelled component="supervisor", "host" or "provider:<key>/<link>".
//
// How children expose their registries, privately:
//   - the host serves its registry on a loopback listener on port 0 and
//     reports the bound address over the admin socket (HostReady);
//   - a provider serves its registry on a loopback listener on port 0 and
//     announces the address in one JSON line on its output
//     (metrics.AnnounceKey), which the supervisor already reads line by line;
//     only loopback addresses are accepted, the first of each run.
//
// A child that is not running, or whose scrape failed, is reported as
// latticed_component_up{component=…} 0 rather than silently dropped.
const (
	componentSupervisor = "supervisor"
	componentHost       = roleHost
)

// providerComponent is a provider's component label value: bounded by the
// providers the node runs.
func providerComponent(key, link string) string { return "provider:" + key + "/" + link }

// scrapeTimeout bounds one child's scrape; children are scraped in parallel.
const scrapeTimeout = 3 * time.Second

var scrapeClient = &http.Client{Timeout: scrapeTimeout}

// metricsHandler serves the node's one scrape target.
func (s *Supervisor) metricsHandler() http.Handler {
	return promhttp.HandlerFor(&mergeGatherer{s: s}, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// component is one child whose metrics are merged.
type component struct {
	name    string
	running bool
	addr    string // "" when it serves no metrics (yet)
}

// components lists the host and every listed provider.
func (s *Supervisor) components() []component {
	var out []component
	if h := s.hostProc; h != nil {
		running := h.child.State() == child.StateRunning
		h.mu.Lock()
		out = append(out, component{name: componentHost, running: running && h.metricsAddr != "", addr: h.metricsAddr})
		h.mu.Unlock()
	} else {
		out = append(out, component{name: componentHost})
	}
	s.provMu.Lock()
	list := make([]*providerInstance, 0, len(s.provs))
	for _, p := range s.provs {
		list = append(list, p)
	}
	s.provMu.Unlock()
	for _, p := range list {
		st := p.child.Status()
		p.mu.Lock()
		c := component{name: providerComponent(p.key, p.link), running: st.PID != 0 && st.State == child.StateRunning, addr: p.metricsAddr}
		p.mu.Unlock()
		if !c.running {
			c.addr = ""
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// mergeGatherer gathers the supervisor's registry and scrapes every running
// child concurrently.
type mergeGatherer struct {
	s  *Supervisor
	mu sync.Mutex // one merge at a time: component_up is set per merge
}

func (g *mergeGatherer) Gather() ([]*dto.MetricFamily, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.s
	comps := s.components()
	fams := make([][]*dto.MetricFamily, len(comps))
	errs := make([]error, len(comps))
	var wg sync.WaitGroup
	for i, c := range comps {
		if c.addr == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			fams[i], errs[i] = scrapeChild(c.name, c.addr)
		}()
	}
	wg.Wait()

	s.m.ComponentUp.Reset()
	s.m.ComponentUp.WithLabelValues(componentSupervisor).Set(1)
	gs := prometheus.Gatherers{}
	var failed []error
	for i, c := range comps {
		up := c.running && errs[i] == nil
		if errs[i] != nil {
			failed = append(failed, errs[i])
		}
		if up {
			s.m.ComponentUp.WithLabelValues(c.name).Set(1)
		} else {
			s.m.ComponentUp.WithLabelValues(c.name).Set(0)
		}
		if fams[i] != nil {
			gs = append(gs, labelled(c.name, staticGatherer(fams[i])))
		}
	}
	gs = append(prometheus.Gatherers{labelled(componentSupervisor, s.m.Registry)}, gs...)
	out, err := gs.Gather()
	if len(failed) > 0 {
		// Logged, not returned: a down child shows as component_up 0 and
		// must not fail the node's scrape.
		s.log.Debug("child metrics not scraped", "errs", fmt.Sprint(failed))
	}
	return out, err
}

type staticGatherer []*dto.MetricFamily

func (g staticGatherer) Gather() ([]*dto.MetricFamily, error) { return g, nil }

// labelled adds component=name to every series of g that has no component
// label yet (latticed_component_up already has one).
func labelled(name string, g prometheus.Gatherer) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		fams, err := g.Gather()
		label, value := metrics.ComponentLabel, name
		for _, f := range fams {
			for _, m := range f.Metric {
				has := false
				for _, lp := range m.Label {
					if lp.GetName() == label {
						has = true
						break
					}
				}
				if has {
					continue
				}
				m.Label = append(m.Label, &dto.LabelPair{Name: &label, Value: &value})
				sort.Slice(m.Label, func(i, j int) bool { return m.Label[i].GetName() < m.Label[j].GetName() })
			}
		}
		return fams, err
	})
}

// scrapeChild reads one child's private metrics endpoint.
func scrapeChild(name, addr string) ([]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	resp, err := scrapeClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s metrics: %w", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s metrics: %s", name, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse %s metrics: %w", name, err)
	}
	out := make([]*dto.MetricFamily, 0, len(fams))
	for _, f := range fams {
		out = append(out, f)
	}
	return out, nil
}
